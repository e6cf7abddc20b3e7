//! The one list of labs. Adding a lab = its folder (config, session, view) and **one line** in
//! the `labs!` list at the bottom of this file; [`LabConfig`], [`View`], [`LabCommand`],
//! [`LabReply`], [`LABS`], link parsing and session building all follow from that line.
//!
//! The macro only writes the enums and the `match`es over them — one arm per lab, each calling
//! the lab's [`Lab`] / [`LabParams`] implementation; there is no logic in it.

use super::params::{self, LabParams, Notice};
use super::{batchnorm, cnn, fit, playground, rnn};
use super::{Lab, LabSession, Session};
use crate::data::images::{Assets, ImageSet};
use serde::{Deserialize, Serialize};
use std::any::Any;

/// A lab's place in the registry: how its commands and replies travel inside the shared enums
/// (labs without commands of their own may share [`super::NoCommand`], so these are not `From`s).
pub trait Registered: Lab {
    fn wrap_reply(reply: Self::Reply) -> LabReply;
    fn unwrap_command(command: LabCommand) -> Option<Self::Command>;
}

macro_rules! labs {
    ($($variant:ident => $lab:ty),* $(,)?) => {
        /// Every lab's config, tagged by the `lab` key.
        #[derive(Clone, Debug, PartialEq)]
        pub enum LabConfig {
            $($variant(<$lab as Lab>::Config),)*
        }

        /// Every lab's view (what a snapshot carries to draw).
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub enum View {
            #[default]
            None,
            $($variant(Box<<$lab as Lab>::View>),)*
        }

        /// A lab-specific command from the page, for the lab it names.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub enum LabCommand {
            $($variant(<$lab as Lab>::Command),)*
        }

        /// A lab's answer to one of its commands.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub enum LabReply {
            $($variant(<$lab as Lab>::Reply),)*
        }

        $(
            impl From<<$lab as Lab>::Config> for LabConfig {
                fn from(c: <$lab as Lab>::Config) -> Self {
                    LabConfig::$variant(c)
                }
            }
            impl From<<$lab as Lab>::View> for View {
                fn from(v: <$lab as Lab>::View) -> Self {
                    View::$variant(Box::new(v))
                }
            }
            impl Registered for $lab {
                fn wrap_reply(reply: <$lab as Lab>::Reply) -> LabReply {
                    LabReply::$variant(reply)
                }
                #[allow(unreachable_patterns)]
                fn unwrap_command(command: LabCommand) -> Option<<$lab as Lab>::Command> {
                    match command {
                        LabCommand::$variant(c) => Some(c),
                        _ => None,
                    }
                }
            }
        )*

        /// The labs, by their `lab` value, in the order of the journey.
        pub const LABS: &[&str] = &[$(<<$lab as Lab>::Config as LabParams>::LAB),*];

        impl LabConfig {
            /// The value of the `lab` key.
            pub fn lab(&self) -> &'static str {
                match self {
                    $(LabConfig::$variant(_) => <<$lab as Lab>::Config as LabParams>::LAB,)*
                }
            }

            /// The lab's config struct, typed: `config.get::<CnnConfig>()`.
            pub fn get<C: LabParams>(&self) -> Option<&C> {
                match self {
                    $(LabConfig::$variant(c) => (c as &dyn Any).downcast_ref(),)*
                }
            }

            /// The config of lab `lab` from link pairs (order-free; see `params`), or `None` for
            /// a lab that doesn't exist.
            pub fn parse(lab: &str, mut pairs: Vec<(String, String)>) -> Option<(LabConfig, Vec<Notice>)> {
                $(
                    if lab == <<$lab as Lab>::Config as LabParams>::LAB {
                        let mut notices = Vec::new();
                        let base = <<$lab as Lab>::Config as LabParams>::base(&mut pairs, &mut notices);
                        let (config, more) = params::parse_pairs_from(base, &pairs);
                        notices.extend(more);
                        return Some((LabConfig::$variant(config), notices));
                    }
                )*
                None
            }

            /// The same config with one key changed, validated.
            pub fn with_value(&self, key: &str, value: &str) -> Result<LabConfig, Notice> {
                Ok(match self {
                    $(LabConfig::$variant(c) => LabConfig::$variant(params::with_value(c, key, value)?),)*
                })
            }

            /// Every key of this lab with its current value, in link order.
            pub fn pairs(&self) -> Vec<(String, String)> {
                match self {
                    $(LabConfig::$variant(c) => params::to_pairs(c),)*
                }
            }

            /// The config is valid (every key in range, consistent).
            pub fn check(&self) -> Result<(), Notice> {
                match self {
                    $(LabConfig::$variant(c) => c.check(),)*
                }
            }

            /// The keys that change a run without rebuilding it (learning rate, batch size…).
            pub fn live_keys(&self) -> &'static [&'static str] {
                match self {
                    $(LabConfig::$variant(_) => <<$lab as Lab>::Config as LabParams>::LIVE,)*
                }
            }

            pub fn seed(&self) -> u64 {
                match self {
                    $(LabConfig::$variant(c) => c.seed(),)*
                }
            }

            /// The image dataset this config trains on, if any (the driver loads it first).
            pub fn needs_images(&self) -> Option<ImageSet> {
                match self {
                    $(LabConfig::$variant(c) => <$lab as Lab>::needs_images(c),)*
                }
            }

            /// The text dataset this config trains on, if any.
            pub fn needs_text(&self) -> Option<crate::data::names::TextSet> {
                match self {
                    $(LabConfig::$variant(c) => <$lab as Lab>::needs_text(c),)*
                }
            }

            /// A session of this config at step 0.
            pub fn build(&self, assets: &Assets) -> Result<Box<dyn LabSession>, String> {
                Ok(match self {
                    $(LabConfig::$variant(c) => Box::new(Session::new(<$lab as Lab>::new(c.clone(), assets)?)),)*
                })
            }
        }
    };
}

labs! {
    Fit => fit::FitLab,
    Playground => playground::PlaygroundLab,
    Cnn => cnn::CnnLab,
    Batchnorm => batchnorm::BnLab,
    Rnn => rnn::RnnLab,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig::Fit(Default::default())
    }
}

impl LabConfig {
    /// The share-link query (without `?`): `lab` first, then every value.
    pub fn to_query(&self) -> String {
        let body = serde_urlencoded::to_string(self.pairs()).expect("string pairs encode");
        format!("lab={}&{}", self.lab(), body)
    }
}
