//! Prints the golden values used by the native and wasm tests (run after a maths change).
fn main() {
    for x in [0.5f32, -1.25, 3.0, 0.1] {
        println!(
            "    ({x:?}, 0x{:08x}, 0x{:08x}, 0x{:08x}),",
            engine::math::tanh(x).to_bits(),
            engine::math::exp(x).to_bits(),
            engine::math::ln(x.abs()).to_bits()
        );
    }
    let mut s = engine::lab::build(&engine::lab::parse_link("lab=fit").config);
    println!("default fit loss at 200: {:?}", s.step(200) as f64);
}
