//! The RNN lab's presets: share links with their stories (held to them by `tests/rnn.rs`).

pub struct RnnPreset {
    pub id: &'static str,
    pub title: &'static str,
    pub story: &'static str,
    pub link: &'static str,
}

pub const PRESETS: &[RnnPreset] = &[
    RnnPreset {
        id: "classify",
        title: "Names → language (hidden 128, Adam, cosine)",
        story: "The classifier: one character at a time into 128 tanh units, the last state into 17 scores, Adam with a \
                learning rate annealed over 20 epochs. It climbs to about 64 % on the test names (naive Bayes: 68 %) while \
                the training accuracy keeps rising well past it — the gap is overfitting; early stopping keeps the epoch \
                with the best validation accuracy.",
        link: "lab=rnn&hidden=128&gain=0.5&opt=adam&lr=0.002&sched=cosine&period=13800&bs=32&eval=200&patience=5&epochs=20",
    },
    RnnPreset {
        id: "vanish",
        title: "Vanishing gradient: W_hh too small",
        story: "W_hh starts at a tenth of N(0, 1/hidden) (spectral radius ≈ 0.1): every step back in time multiplies the \
                gradient by W_hh and tanh′, so ‖∂L/∂h_t‖ falls by about ten times per character. Only the last few \
                characters of a name learn — type a long name and hover its first letters.",
        link: "lab=rnn&hidden=128&init=normal&gain=0.1&opt=sgd&lr=0.05&bs=32&eval=200&name=Papadopoulos&epochs=0",
    },
    RnnPreset {
        id: "explode",
        title: "Exploding gradient: W_hh too large, no clipping",
        story: "W_hh starts at three times N(0, 1/hidden) (spectral radius ≈ 3): gradients through time grow by up to \
                that factor per character, the gradient norm spikes, plain SGD jumps and the loss thrashes.",
        link: "lab=rnn&hidden=128&init=normal&gain=3&opt=sgd&lr=0.05&bs=32&eval=200&clip=0&epochs=0",
    },
    RnnPreset {
        id: "clip",
        title: "The same, with clipping at 1",
        story: "The same large W_hh, with the gradient's global norm clipped to 1 before each step: the meter shows how \
                often and how hard it clips; the steps stay bounded and the loss comes down.",
        link: "lab=rnn&hidden=128&init=normal&gain=3&opt=sgd&lr=0.05&bs=32&eval=200&clip=1&epochs=0",
    },
    RnnPreset {
        id: "generate",
        title: "Generate names (many:many)",
        story: "The same RNN as a language model on 32,257 US baby names: at every character it predicts the next one (or \
                the end of the name). The dev loss drops below the bigram and then the trigram counts within a few epochs; \
                samples turn from noise into plausible new names. Lower the temperature for common names, raise it for \
                stranger ones, or give the first letters.",
        link: "lab=rnn&task=generate&data=baby&hidden=128&opt=adam&lr=0.002&sched=cosine&period=16140&bs=32&eval=300&epochs=20",
    },
    RnnPreset {
        id: "shakespeare",
        title: "Write like Shakespeare (a character language model)",
        story: "The same network reads eight plays as one stream, 24 characters at a time, and predicts every next \
                character. The last tenth of the text is never trained on: the dev loss there falls below the trigram counts \
                within the first epoch. Samples keep the state from character to character: first spaces and vowels, then \
                words, speakers' names in capitals and lines of verse.",
        link: "lab=rnn&task=generate&data=shakespeare&hidden=128&opt=adam&lr=0.002&sched=cosine&period=12070&bs=32&eval=400&epochs=10&temp=0.8&samples=2",
    },
    RnnPreset {
        id: "one-to-one",
        title: "1:1 — no memory (a bigram model as a network)",
        story: "The same network with its recurrence switched off: each step sees only the current character. It can only \
                learn which letter tends to follow which, so its dev loss settles at the bigram counts' (about 2.46 nats) and \
                its names look like letter soup with plausible pairs. Switch the task to generate to see what memory buys.",
        link: "lab=rnn&task=bigram&data=baby&hidden=128&opt=adam&lr=0.002&sched=cosine&period=16140&bs=32&eval=300&epochs=20",
    },
    RnnPreset {
        id: "one-to-many",
        title: "1:many — a surname given a language",
        story: "The surnames again, read the other way: the first input is the language (one start symbol per language) \
                and the network spells a surname of it, character by character. Pick Japanese, Russian or Irish and watch the \
                samples take on their endings and letter pairs as it learns.",
        link: "lab=rnn&task=language&data=names&hidden=128&opt=adam&lr=0.002&sched=cosine&period=14440&bs=32&eval=300&epochs=20&lang=Japanese",
    },
];
