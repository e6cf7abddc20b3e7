//! The RNN lab on the shipped surnames (seeded, release mode): it learns, its loop equals its
//! batched layer, the typed name is probed, the presets show vanishing and exploding gradients
//! and clipping, pasted data is checked line by line, and early stopping stops.

use engine::data::images::Assets;
use engine::data::names::{TextFile, TextSet};
use engine::lab::rnn::{RnnCommand, RnnConfig, RnnLab, RnnView, PRESETS};
use engine::lab::{parse_link, Lab};
use engine::loss::{Loss, Target};
use engine::tensor;
use std::path::PathBuf;

fn assets() -> Assets {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert_text(TextFile::load_dir(TextSet::Names, &dir).expect("static/data ships the names"));
    a
}

fn lab(link: &str) -> RnnLab {
    let parsed = parse_link(link);
    assert!(parsed.notices.is_empty(), "{link}: {:?}", parsed.notices);
    RnnLab::new(parsed.config.get::<RnnConfig>().expect("an rnn link").clone(), &assets()).expect("names loaded")
}

fn preset(id: &str) -> &'static str {
    PRESETS.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("preset {id}")).link
}

fn train_to(l: &mut RnnLab, steps: u64) {
    while l.trainer().step < steps {
        l.train(1);
    }
}

fn view(l: &mut RnnLab) -> RnnView {
    l.report().view
}

#[test]
fn log_softmax_plus_nll_is_softmax_cross_entropy() {
    let logits = tensor::from_vec(&[2, 3], vec![1.0, -2.0, 0.5, 3.0, 3.0, -1.0]);
    let classes = [2usize, 0];
    let mut grad = tensor::zeros(&[0]);
    let loss = Loss::Softmax.value_and_grad(&logits, Target::Classes(&classes), &mut grad);
    // The seed's way: log-softmax, then the mean negative log-likelihood of the true class.
    let mut nll = 0.0f64;
    for (r, &c) in classes.iter().enumerate() {
        let row = &logits.data()[r * 3..(r + 1) * 3];
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        nll -= row[c] as f64 - lse;
        for k in 0..3 {
            let p = (row[k] as f64 - lse).exp();
            let expected = (p - if k == c { 1.0 } else { 0.0 }) / 2.0;
            assert!((grad.data()[r * 3 + k] as f64 - expected).abs() < 1e-6);
        }
    }
    assert!((loss as f64 - nll / 2.0).abs() < 1e-6, "{loss} vs {}", nll / 2.0);
}

#[test]
fn the_classifier_learns_beats_chance_and_its_loop_equals_its_batched_layer() {
    let mut l = lab("lab=rnn&eval=300&race=false&epochs=0");
    let baseline = l.baseline();
    // Exact to the digits (the packed n-gram keys changed no count and no sum).
    assert!((baseline[0] - 0.682_994_4).abs() < 1e-6, "naive Bayes on the seed-1 split: {baseline:?}");
    train_to(&mut l, 700);
    l.finish();
    let e = l.history().last().unwrap().clone();
    eprintln!("after 700 steps: val {:.4}, test {:.4}, balanced {:.4}", e.val_accuracy, e.test_accuracy, e.test_balanced);
    assert!(e.test_accuracy > 0.45 && e.test_balanced > 0.3, "{e:?}");
    // The race: the same mini-batch through the per-name loop and the batched layer (after a
    // probe has run, as in the page); it changes nothing of the run.
    view(&mut l);
    let loss = l.trainer().last_loss;
    let mut clock = 0.0;
    let race = l.race(&mut || {
        clock += 1.0;
        clock
    });
    assert!(race.loop_ms > 0.0 && race.batched_ms > 0.0);
    train_to(&mut l, 701);
    let mut twin = lab("lab=rnn&eval=300&race=false&epochs=0");
    train_to(&mut twin, 701);
    assert_eq!(l.trainer().last_loss, twin.trainer().last_loss, "a race does not change the run (step 700 loss {loss})");
    assert!(race.batch > 0);
    assert_eq!(race.max_out_diff, 0.0, "forward: the same bits");
    assert!(race.max_grad_diff <= 1e-5, "weight gradients: {}", race.max_grad_diff);
    // The typed name: three guesses, one per prefix, states and gradients per character.
    let v = view(&mut l);
    let p = &v.probe;
    assert_eq!(p.name, "Kowalski");
    assert_eq!(p.top.len(), 3);
    assert!(p.top[0].p >= p.top[1].p && p.top.iter().map(|g| g.p).sum::<f32>() <= 1.0 + 1e-5);
    assert_eq!((p.prefixes.len(), p.states.len(), p.input_grads.len(), p.state_grads.len()), (8, 8 * 128, 8, 8));
    // Hovering a character: how each earlier character drives the guess after that prefix.
    assert_eq!(p.influence.len(), 8 * 8);
    for l in 0..8 {
        let row = &p.influence[l * 8..(l + 1) * 8];
        assert!(row[..=l].iter().all(|&g| g > 0.0) && row[l + 1..].iter().all(|&g| g == 0.0), "prefix {l}: {row:?}");
    }
    assert_eq!(&p.influence[7 * 8..], &p.input_grads[..], "the last prefix is the name");
    assert_ne!(p.influence[2 * 8..2 * 8 + 3], p.input_grads[..3], "\"Kow\" is guessed from other gradients than \"Kowalski\"");
    assert_eq!(v.confusion.len(), 17 * 17);
    assert_eq!(v.confusion.iter().sum::<u32>() as usize, v.sizes[2]);
}

#[test]
fn presets_vanish_explode_and_clip() {
    let mut vanish = lab(preset("vanish"));
    train_to(&mut vanish, 20);
    let v = view(&mut vanish);
    assert!(v.spectral_radius < 0.2, "vanish: ρ {}", v.spectral_radius);
    let g = &v.probe.state_grads;
    assert_eq!(g.len(), "Papadopoulos".len());
    assert!(g[0] < 1e-6 * g[g.len() - 1], "the gradient vanishes back through time: {g:?}");
    let mut explode = lab(preset("explode"));
    train_to(&mut explode, 20);
    let v = view(&mut explode);
    assert!(v.spectral_radius > 2.0, "explode: ρ {}", v.spectral_radius);
    let mut clip = lab(preset("clip"));
    train_to(&mut clip, 60);
    let meter = view(&mut clip).clip;
    eprintln!("clip meter: {meter:?}");
    assert_eq!(meter.threshold, 1.0);
    assert!(meter.clipped > 0.5 && meter.max_norm > 1.0, "{meter:?}");
}

#[test]
fn pasted_names_are_checked_line_by_line_and_early_stopping_stops() {
    let mut l = lab("lab=rnn&hidden=16&eval=50&race=false&epochs=0&patience=2");
    let bad = l.command(RnnCommand::SetData { text: "Smith,English\nnolabel\nRossi,Italian\n".into() }, &mut || 0.0).unwrap_err();
    assert!(bad.message.contains("line 2") && bad.message.contains("nothing changed"), "{}", bad.message);
    assert_eq!(view(&mut l).sizes.iter().sum::<usize>(), 28_850, "the shipped names stay");
    let pasted: String = (0..60).map(|i| if i % 2 == 0 { format!("Mac{i}donald,Scottish\n") } else { format!("Kowal{i}ski,Polish\n") }).collect();
    l.command(RnnCommand::SetData { text: pasted }, &mut || 0.0).unwrap();
    let v = view(&mut l);
    assert!(v.custom && v.classes == ["Polish", "Scottish"], "{:?}", v.classes);
    assert_eq!(v.sizes.iter().sum::<usize>(), 60);
    // Patience 2: the run stops within a few epochs of its best validation accuracy.
    let mut reason = None;
    for _ in 0..20_000 {
        l.train(1);
        reason = l.stop_reason();
        if reason.is_some() {
            break;
        }
    }
    let reason = reason.expect("early stopping");
    assert!(reason.contains("stopped early") || reason.contains("epochs"), "{reason}");
    let best = l.best().expect("a best epoch");
    assert!(l.trainer().epoch >= best.epoch + 2);
}

#[test]
fn generation_beats_the_bigram_counts_within_an_epoch_and_samples_names() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert_text(TextFile::load_dir(TextSet::Baby, &dir).expect("static/data ships the baby names"));
    let parsed = parse_link("lab=rnn&task=generate&eval=100000");
    assert!(parsed.notices.is_empty(), "{:?}", parsed.notices);
    let mut l = RnnLab::new(parsed.config.get::<RnnConfig>().unwrap().clone(), &a).unwrap();
    let [bigram, trigram] = l.ngram_baselines().unwrap();
    assert!((bigram - 2.456).abs() < 0.01 && (trigram - 2.242).abs() < 0.01, "{bigram} {trigram}");
    while l.trainer().epoch < 1 {
        l.train(1);
    }
    l.finish();
    let dev = l.dev_nll().unwrap();
    eprintln!("generation after 1 epoch: dev {dev:.4} (bigram {bigram:.4}, trigram {trigram:.4})");
    assert!(dev < bigram, "{dev}");
    let names = l.sample_names(20);
    assert_eq!(names.len(), 20);
    assert!(names.iter().all(|n| !n.is_empty() && n.chars().count() <= 24));
    let v = l.report().view;
    let g = v.gen.expect("the generation view");
    assert_eq!(g.samples.len(), 10);
    assert!((0.0..=1.0).contains(&g.new_share));
    assert!(g.samples.iter().all(|s| s.steps.iter().all(|top| top.len() == 5)));
    // A classification link refuses the baby names, and generation the surnames.
    assert!(parse_link("lab=rnn&task=generate&data=names").notices.iter().any(|n| n.key == "data"));
}

/// The lab's two targets on the shipped data, seed 1 (40–90 s each natively). Named to sort
/// first: libtest starts tests in name order, so the two long ones overlap the short ones.
#[test]
fn classifier_target_64_percent() {
    let mut l = lab(preset("classify"));
    while l.trainer().epoch < 20 {
        l.train(1);
    }
    l.finish();
    let best = l.best().expect("a best epoch").clone();
    eprintln!("classifier: best epoch {}, validation {:.4}, test {:.4}", best.epoch, best.val_accuracy, best.test_accuracy);
    assert!(best.test_accuracy >= 0.64, "{best:?}");
}

#[test]
fn generation_target_2_05_nats() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert_text(TextFile::load_dir(TextSet::Baby, &dir).expect("static/data ships the baby names"));
    let link = PRESETS.iter().find(|p| p.id == "generate").unwrap().link;
    let mut g = RnnLab::new(parse_link(link).config.get::<RnnConfig>().unwrap().clone(), &a).unwrap();
    while g.trainer().epoch < 20 {
        g.train(1);
    }
    g.finish();
    let dev = g.dev_nll().unwrap();
    eprintln!("generation: dev {dev:.4} nats per character after 20 epochs");
    assert!(dev <= 2.05, "{dev}");
}

#[test]
fn one_to_one_is_a_bigram_model() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert_text(TextFile::load_dir(TextSet::Baby, &dir).expect("static/data ships the baby names"));
    let mut l = RnnLab::new(parse_link("lab=rnn&task=bigram").config.get::<RnnConfig>().unwrap().clone(), &a).unwrap();
    while l.trainer().epoch < 1 {
        l.train(1);
    }
    l.finish();
    let (dev, [bigram, _]) = (l.dev_nll().unwrap(), l.ngram_baselines().unwrap());
    eprintln!("1:1 after an epoch: {dev:.4} (bigram counts {bigram:.4})");
    assert!((dev - bigram).abs() < 0.05, "{dev} vs {bigram}");
}

#[test]
fn one_to_many_spells_a_surname_given_its_language() {
    let link = PRESETS.iter().find(|p| p.id == "one-to-many").unwrap().link;
    let mut l = lab(link);
    while l.trainer().epoch < 1 {
        l.train(1);
    }
    l.finish();
    let (dev, [bigram, _]) = (l.dev_nll().unwrap(), l.ngram_baselines().unwrap());
    eprintln!("1:many after an epoch: {dev:.4} (bigram counts {bigram:.4})");
    assert!(dev < bigram, "{dev} vs {bigram}");
    let japanese = l.sample_names(30);
    assert!(japanese.iter().all(|n| !n.contains('·')), "samples are characters: {japanese:?}");
    // The language is an input: another one gives other names from the same weights.
    let mut russian = lab(&link.replace("lang=Japanese", "lang=Russian"));
    while russian.trainer().epoch < 1 {
        russian.train(1);
    }
    assert_ne!(japanese, russian.sample_names(30));
    assert!(parse_link("lab=rnn&task=language&lang=Klingon").notices.iter().any(|n| n.key == "lang"));
}

#[test]
fn shakespeare_beats_the_trigram_counts_in_two_epochs_and_writes_passages() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert_text(TextFile::load_dir(TextSet::Play, &dir).expect("static/data ships tiny Shakespeare"));
    let link = preset("shakespeare");
    let parsed = parse_link(link);
    assert!(parsed.notices.is_empty(), "{:?}", parsed.notices);
    let mut l = RnnLab::new(parsed.config.get::<RnnConfig>().unwrap().clone(), &a).unwrap();
    let [bigram, trigram] = l.ngram_baselines().unwrap();
    // On the last tenth of the text (plays never trained on), 79 symbols.
    assert!((bigram - 2.536).abs() < 0.01 && (trigram - 2.169).abs() < 0.01, "{bigram} {trigram}");
    let v = l.report().view;
    assert_eq!(v.sizes, [38_614, 4_827, 4_827], "windows split in order");
    while l.trainer().epoch < 2 {
        l.train(1);
    }
    l.finish();
    let dev = l.dev_nll().unwrap();
    eprintln!("Shakespeare after 2 epochs: dev {dev:.4} (bigram {bigram:.4}, trigram {trigram:.4})");
    assert!(dev < trigram - 0.05, "{dev}");
    let g = l.report().view.gen.expect("the generation view");
    assert!(g.new_share.is_nan(), "passages are not names: no share of new ones");
    assert_eq!(g.samples.len(), 2);
    for s in &g.samples {
        assert!(s.name.starts_with("MENENIUS:"), "the prime starts the passage");
        assert_eq!(s.steps.len(), 200);
        // It has learnt words and lines: spaces, newlines, mostly letters.
        let spaces = s.name.matches(' ').count();
        assert!(spaces > 15 && s.name.contains('\n'), "{:?}", s.name);
        assert!(!s.name.contains('·'));
    }
    // The same link samples the same passages (the CLI's `sample` equals the page's).
    let run = || {
        let mut l = RnnLab::new(parsed.config.get::<RnnConfig>().unwrap().clone(), &a).unwrap();
        while l.trainer().step < 300 {
            l.train(1);
        }
        l.sample_names(3)
    };
    assert_eq!(run(), run());
    // Names and plays are different tasks: classification refuses the plays.
    assert!(parse_link("lab=rnn&task=classify&data=shakespeare").notices.iter().any(|n| n.key == "data"));
}

#[test]
fn generation_trains_on_pasted_names_or_text_checked_first() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert_text(TextFile::load_dir(TextSet::Baby, &dir).unwrap());
    a.insert_text(TextFile::load_dir(TextSet::Play, &dir).unwrap());
    let open = |link: &str| RnnLab::new(parse_link(link).config.get::<RnnConfig>().unwrap().clone(), &a).unwrap();
    let sizes = |l: &mut RnnLab| l.report().view.sizes;
    let mut names = open("lab=rnn&task=generate&data=baby");
    let shipped = sizes(&mut names);
    let bad = names.command(RnnCommand::SetData { text: "ava\nbo,English\n".into() }, &mut || 0.0).unwrap_err();
    assert!(bad.message.contains("line 2"), "{}", bad.message);
    let few = names.command(RnnCommand::SetData { text: "ava\nbo\n".into() }, &mut || 0.0).unwrap_err();
    assert!(few.message.contains("too few"), "{}", few.message);
    assert_eq!(sizes(&mut names), shipped, "refused: the data in use stays");
    let pasted: String = (0..40).map(|i| format!("zorba{i}\n")).collect();
    names.command(RnnCommand::SetData { text: pasted }, &mut || 0.0).unwrap();
    assert_eq!(sizes(&mut names).iter().sum::<usize>(), 40);
    names.train(50);
    assert!(names.trainer().step > 0);

    let mut play = open("lab=rnn&task=generate&data=shakespeare");
    let short = play.command(RnnCommand::SetData { text: "To be".into() }, &mut || 0.0).unwrap_err();
    assert!(short.message.contains("5 characters"), "{}", short.message);
    let text = "Shall I compare thee to a summer's day?\n".repeat(50);
    play.command(RnnCommand::SetData { text }, &mut || 0.0).unwrap();
    assert_eq!(sizes(&mut play).iter().sum::<usize>(), (40 * 50 - 1usize).div_ceil(24));
    play.train(20);
    let passage = &play.sample_names(1)[0];
    assert!(passage.starts_with("MENENIUS:") && passage.chars().count() == 209, "{passage:?}");
}
