//! Hand-made reference networks written as arch.json, so that `nago-train` trains them with
//! exactly the recipe and budget of a search's networks (the comparison `make bench-search`
//! needs: does the search beat what a person would write by hand at the same size?).
//!
//! Both use only what the format already has, with these departures from the textbook
//! networks (the format's layer conventions, not extensions of it):
//!
//! * convolutions are `ReLU → Conv → BN` (pre-activation order), as every NAGO operation;
//! * downsampling between stages is the format's edge: 2×2 average pooling, then a 1×1
//!   projection to the wider stage (`ReLU → Conv1×1 → BN`), instead of a strided convolution;
//! * the stem is the sampler's (two 3×3 convolutions for small images, two strided ones above
//!   64 pixels) and the head is the format's (`ReLU → 1×1 conv → BN → ReLU → GAP → dropout →
//!   linear`), here 64 channels wide instead of the sampler's 1,280;
//! * the residual sums of [`Baseline::Resnet20`] are the format's `sum` merge, Σ σ(w_i)·x_i with
//!   one learnt gate per input (a ResNet with learnt skip scales).
//!
//! The records say what they are: `name` is the baseline's, `generator` is the default and
//! `seed` is 0 (nothing was sampled).

use crate::sample::{stage_shapes, stem_for_size, stem_geometry};
use crate::{GenerateError, SampleOptions};
use nago_arch::{
    Arch, Cell, Edge, Head, InputShape, Merge, OpGraph, OpNode, Projection, ARCH_SCHEMA,
};
use nago_space::{Generator, MergeKind, Op};

/// A hand-made network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Baseline {
    /// A plain VGG-style CNN under 100k parameters: widths 16/32/64, two 3×3 convolutions in
    /// the first two stages and one in the last (about 75k parameters on Fashion-MNIST).
    PlainCnn,
    /// A ResNet-20-like network: widths 16/32/64, three residual blocks of two 3×3
    /// convolutions per stage (about 0.3M parameters on Fashion-MNIST).
    Resnet20,
}

impl Baseline {
    /// Every baseline, in a fixed order.
    pub const ALL: [Baseline; 2] = [Baseline::PlainCnn, Baseline::Resnet20];

    /// Its name (`plain-cnn`, `resnet20`): the `name` in arch.json and the CLI's value.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::PlainCnn => "plain-cnn",
            Baseline::Resnet20 => "resnet20",
        }
    }

    /// The baseline called `name`.
    pub fn from_name(name: &str) -> Option<Baseline> {
        Baseline::ALL.into_iter().find(|b| b.name() == name)
    }
}

const WIDTHS: [u32; 3] = [16, 32, 64];
const HEAD_CHANNELS: u32 = 64;

/// Builds `baseline` for `input` (any size the sampler accepts: the stem is strided above
/// 64 pixels). The result passes [`Arch::check`].
pub fn baseline(baseline: Baseline, input: InputShape) -> Result<Arch, GenerateError> {
    let (large, h0, w0) = stem_geometry(input, SampleOptions::default().large_image)?;
    let stem = stem_for_size(input, WIDTHS[0], large);
    let stages = stage_shapes(&WIDTHS, h0, w0);
    let conv = |inputs: Vec<Edge>, ch: u32| OpNode {
        op: Op::Conv3x3,
        merge: Merge {
            kind: MergeKind::Sum,
            inputs,
            channels: ch,
            project: None,
        },
        channels: ch,
    };
    let from = |j: Option<u32>| Edge {
        from: j,
        pool: 1,
        project: None,
    };
    let mut cells = Vec::new();
    for (s, st) in stages.iter().enumerate() {
        // The stage's input: the stem for the first, else the previous stage pooled 2×2 and
        // projected to this width.
        let input_edge = if s == 0 {
            from(None)
        } else {
            Edge {
                from: Some(s as u32 - 1),
                pool: 2,
                project: Some(Projection {
                    in_ch: WIDTHS[s - 1],
                    out_ch: st.channels,
                }),
            }
        };
        let ch = st.channels;
        let (opgraphs, outputs) = match baseline {
            Baseline::PlainCnn => {
                let n = if s == 2 { 1 } else { 2 };
                let ops = (0..n)
                    .map(|k| conv(vec![from(if k == 0 { None } else { Some(k - 1) })], ch))
                    .collect();
                let g = OpGraph {
                    merge: single(from(None), ch),
                    ops,
                    outputs: vec![n - 1],
                };
                (vec![g], vec![0])
            }
            Baseline::Resnet20 => {
                // Block k's input is x + F_0 + … + F_{k−1}: the residual stream unrolled, each
                // term one input of a sum merge.
                let blocks: Vec<OpGraph> = (0..3u32)
                    .map(|k| {
                        let mut inputs = vec![from(None)];
                        inputs.extend((0..k).map(|j| from(Some(j))));
                        OpGraph {
                            merge: Merge {
                                kind: MergeKind::Sum,
                                inputs,
                                channels: ch,
                                project: None,
                            },
                            ops: vec![conv(vec![from(None)], ch), conv(vec![from(Some(0))], ch)],
                            outputs: vec![1],
                        }
                    })
                    .collect();
                (blocks, vec![0, 1, 2])
            }
        };
        cells.push(Cell {
            stage: s as u32,
            channels: ch,
            height: st.height,
            width: st.width,
            merge: single(input_edge, ch),
            opgraphs,
            outputs,
        });
    }
    let mut arch = Arch {
        schema: ARCH_SCHEMA.to_string(),
        name: Some(baseline.name().to_string()),
        generator: Generator::default(),
        seed: 0,
        input,
        width_multiplier: WIDTHS[0],
        stages,
        stem,
        cells,
        output: vec![from(Some(2))],
        head: Head {
            in_ch: WIDTHS[2],
            channels: HEAD_CHANNELS,
            dropout: 0.0,
            classes: input.classes,
        },
        counts: Default::default(),
    };
    arch.counts = arch.count();
    arch.check().map_err(|e| GenerateError::Input {
        h: input.height,
        w: input.width,
        message: format!("{} does not fit this input: {e}", baseline.name()),
    })?;
    Ok(arch)
}

fn single(e: Edge, ch: u32) -> Merge {
    Merge {
        kind: MergeKind::Sum,
        inputs: vec![e],
        channels: ch,
        project: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmnist() -> InputShape {
        InputShape {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
        }
    }

    #[test]
    fn the_baselines_are_valid_networks_of_their_advertised_size() {
        let plain = baseline(Baseline::PlainCnn, fmnist()).unwrap();
        let res = baseline(Baseline::Resnet20, fmnist()).unwrap();
        for a in [&plain, &res] {
            let back = Arch::from_json(&a.to_json()).unwrap();
            assert_eq!(&back, a);
        }
        assert!(
            (50_000..100_000).contains(&plain.counts.params),
            "{}",
            plain.counts.params
        );
        assert!(
            (250_000..320_000).contains(&res.counts.params),
            "{}",
            res.counts.params
        );
        // 2 + 2 + 1 and 3 × 3 × 2 convolutions.
        assert_eq!(plain.n_ops(), 5);
        assert_eq!(res.n_ops(), 18);
        assert_eq!(plain.name.as_deref(), Some("plain-cnn"));
        assert_eq!(Baseline::from_name("resnet20"), Some(Baseline::Resnet20));
        assert_eq!(Baseline::from_name("resnet"), None);
    }

    #[test]
    fn large_images_get_the_strided_stem_and_rgb_input() {
        let a = baseline(
            Baseline::Resnet20,
            InputShape {
                channels: 3,
                height: 96,
                width: 96,
                classes: 5,
            },
        )
        .unwrap();
        assert!(a.stem.iter().all(|s| s.stride == 2));
        assert_eq!((a.stages[0].height, a.stages[2].height), (24, 6));
        assert!(baseline(
            Baseline::PlainCnn,
            InputShape {
                channels: 1,
                height: 3,
                width: 3,
                classes: 2
            }
        )
        .is_err());
    }
}
