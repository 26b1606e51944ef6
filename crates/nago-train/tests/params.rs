//! The built network's trainable parameter count equals arch.json's, exactly, for many
//! sampled architectures (every merge kind, every operation, small and large images).

mod common;

use nago_arch::InputShape;
use nago_space::{MergeKind, Op};
use nago_train::net::{count_params, Net};
use nago_train::rng::SplitMix;
use std::collections::BTreeSet;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

#[test]
fn parameter_count_equals_arch_json_for_many_architectures() {
    tch::set_num_threads(1);
    let shapes = [
        InputShape {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
        },
        InputShape {
            channels: 3,
            height: 32,
            width: 32,
            classes: 100,
        },
        InputShape {
            channels: 3,
            height: 80,
            width: 72,
            classes: 7,
        },
    ];
    let mut r = SplitMix::new(2024);
    let mut merges = BTreeSet::new();
    let mut ops = BTreeSet::new();
    let mut n = 0;
    for i in 0..300u64 {
        let g = common::random_generator(&mut r);
        let shape = shapes[(i % 3) as usize];
        let arch = match nago_generator::sample(&g, i, shape) {
            Ok(a) => a,
            Err(e) => panic!("generator {i} failed to sample: {e}"),
        };
        for c in &arch.cells {
            for m in std::iter::once(&c.merge).chain(c.opgraphs.iter().map(|g| &g.merge)) {
                if m.inputs.len() > 1 {
                    merges.insert(format!("{:?}", m.kind));
                }
            }
            for gr in &c.opgraphs {
                for o in &gr.ops {
                    ops.insert(format!("{:?}", o.op));
                    if o.merge.inputs.len() > 1 {
                        merges.insert(format!("{:?}", o.merge.kind));
                    }
                }
            }
        }
        let vs = VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), &arch);
        assert_eq!(
            count_params(&vs),
            arch.counts.params,
            "architecture {i} ({shape:?}): built vs arch.json"
        );
        // Every tenth: a forward pass runs and gives one logit per class.
        if i % 10 == 0 {
            let x = Tensor::randn(
                [
                    2,
                    shape.channels as i64,
                    shape.height as i64,
                    shape.width as i64,
                ],
                (Kind::Float, Device::Cpu),
            );
            let y = tch::no_grad(|| net.forward_t(&x, false));
            assert_eq!(y.size(), vec![2, shape.classes as i64]);
        }
        n += 1;
    }
    eprintln!("checked {n} architectures; merges {merges:?}; ops {ops:?}");
    assert_eq!(n, 300);
    for m in [MergeKind::Sum, MergeKind::Attention, MergeKind::Concat] {
        assert!(merges.contains(&format!("{m:?}")), "no {m:?} merge sampled");
    }
    for o in [
        Op::Conv3x3,
        Op::Conv5x5,
        Op::Conv1x1,
        Op::Conv3x1,
        Op::Conv1x3,
        Op::Avgpool3x3,
        Op::Avgpool5x5,
    ] {
        assert!(ops.contains(&format!("{o:?}")), "no {o:?} sampled");
    }
}

#[test]
fn paper_generator_at_paper_size_matches() {
    let g = nago_space::Generator::default();
    let shape = InputShape {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
    };
    let arch = nago_generator::sample(&g, 1, shape).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let _net = Net::new(&vs.root(), &arch);
    assert_eq!(count_params(&vs), arch.counts.params);
}
