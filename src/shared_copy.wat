;; Copies between this worker's wasm memory ("own", the Rust module's) and the memory the
;; workers share ("shared"): one module with both memories (multi-memory), so that the copies are
;; `memory.copy` and SIMD loads, not V8's copy between a SharedArrayBuffer and a typed array.
;; Offsets and lengths in bytes.
(module
  (import "m" "own" (memory $own 0))
  (import "m" "shared" (memory $shared 0 65536 shared))
  ;; own[dst..dst + bytes] = shared[src..src + bytes]
  (func (export "copy_in") (param $dst i32) (param $src i32) (param $bytes i32)
    (memory.copy $own $shared (local.get $dst) (local.get $src) (local.get $bytes)))
  ;; shared[dst..dst + bytes] = own[src..src + bytes]
  (func (export "copy_out") (param $dst i32) (param $src i32) (param $bytes i32)
    (memory.copy $shared $own (local.get $dst) (local.get $src) (local.get $bytes)))
  ;; shared f32 dst[i] = a[i] + b[i] (a and b in own), for bytes / 4 floats
  (func (export "add_out") (param $dst i32) (param $a i32) (param $b i32) (param $bytes i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.and (local.get $bytes) (i32.const -16)))
    (block $lanes_done
      (loop $lanes
        (br_if $lanes_done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store $shared (i32.add (local.get $dst) (local.get $i))
          (f32x4.add (v128.load $own (i32.add (local.get $a) (local.get $i)))
                     (v128.load $own (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $lanes)))
    (block $done
      (loop $rest
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (f32.store $shared (i32.add (local.get $dst) (local.get $i))
          (f32.add (f32.load $own (i32.add (local.get $a) (local.get $i)))
                   (f32.load $own (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rest))))
  ;; own f32 out[i] = a[i] + shared[src + i], for bytes / 4 floats (a may be out)
  (func (export "add_in") (param $out i32) (param $a i32) (param $src i32) (param $bytes i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.and (local.get $bytes) (i32.const -16)))
    (block $lanes_done
      (loop $lanes
        (br_if $lanes_done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store $own (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load $own (i32.add (local.get $a) (local.get $i)))
                     (v128.load $shared (i32.add (local.get $src) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $lanes)))
    (block $done
      (loop $rest
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (f32.store $own (i32.add (local.get $out) (local.get $i))
          (f32.add (f32.load $own (i32.add (local.get $a) (local.get $i)))
                   (f32.load $shared (i32.add (local.get $src) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rest))))
)
