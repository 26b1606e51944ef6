//! `rust_logits ARCH_JSON CHECKPOINT_DIR INPUT_SAFETENSORS OUT_SAFETENSORS`: a test tool of
//! `make test-export` (tests/python/export_logits.py), an example so that `cargo test` builds it
//! with the workspace's features instead of a separate build of the trainer's dependencies.
//!
//! Builds the trainer's network (`nago_train::net::Net`) for ARCH_JSON, loads the `model/`
//! tensors of CHECKPOINT_DIR/checkpoint.safetensors into it, runs it in evaluation mode on the
//! tensor `input` of INPUT_SAFETENSORS (float32, CPU) and writes the tensor `logits`.

use nago_train::net::Net;
use nago_train::tch::{self, nn, nn::ModuleT, Device, Tensor};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    assert_eq!(
        a.len(),
        5,
        "usage: rust_logits ARCH_JSON CHECKPOINT_DIR INPUT OUT"
    );
    tch::set_num_threads(1);
    let arch = nago_arch::Arch::from_json(&std::fs::read_to_string(&a[1]).unwrap()).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), &arch);
    let ck = nago_train::checkpoint::load(std::path::Path::new(&a[2])).unwrap();
    let mut vars = vs.variables();
    assert_eq!(
        vars.len(),
        ck.model.len(),
        "variables vs checkpoint tensors"
    );
    tch::no_grad(|| {
        for (name, t) in vars.iter_mut() {
            let src = ck
                .model
                .get(name)
                .unwrap_or_else(|| panic!("{name} not in the checkpoint"));
            t.copy_(src);
        }
    });
    let input = Tensor::read_safetensors(&a[3]).unwrap();
    let x = &input
        .iter()
        .find(|(n, _)| n == "input")
        .expect("tensor `input`")
        .1;
    let logits = tch::no_grad(|| net.forward_t(x, false));
    Tensor::write_safetensors(&[("logits", logits)], &a[4]).unwrap();
}
