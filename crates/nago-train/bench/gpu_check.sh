#!/usr/bin/env bash
# GPU check of nago-train (see shared/notes/gpu.md): run on the lent machine from the repo root.
# Prepare: build with the full torch wheel (CARGO_TARGET_DIR=target/cuda LIBTORCH=python/.venv/.../torch),
# strip target/cuda/release/{nago-train,examples/bench_train} into .device/, copy the Fashion-MNIST
# .gz files into .device/fmnist and three arch.json (bench_train write .device) there; carry .device.
set -u
D=.device
export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
echo "== machine"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch;print("python torch", torch.__version__, "cuda", torch.cuda.is_available())'
echo "== ldd"; ldd $D/nago-train | grep -E "torch|c10|not found"
mem_start() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > $OUT/mem.txt & MEMPID=$!; }
mem_stop() { kill $MEMPID 2>/dev/null; wait $MEMPID 2>/dev/null; sort -n $OUT/mem.txt | tail -1; }
for mode in fp32 bf16; do
  flag=""; [ $mode = bf16 ] && flag="--bf16"
  echo "== nago-train arch1 1 epoch, 20k images, batch 96, $mode"
  mem_start
  timeout 120 $D/nago-train --arch $D/arch1.json --out $OUT/train-$mode --dataset fashion-mnist --data $D/fmnist \
     --epochs 1 --train-subset 20000 --validation 5000 --batch-size 96 --no-progress $flag 2>&1 | tail -3
  echo "peak GPU memory used (MiB, whole GPU): $(mem_stop)"
  grep -E '"(status|device|images_per_second|val_accuracy|test_accuracy|bf16)"' $OUT/train-$mode/result.json
done
echo "== step bench: arch params | mode | pytorch img/s | nago img/s (batch 96, 10 warm-up + 60 steps)"
for a in 0 1 2; do
  for mode in fp32 bf16 bf16-cl; do
    mem_start
    py=$(timeout 90 python3 crates/nago-train/bench/bench_torch.py $D/arch$a.json $D/fmnist 96 10 60 8 cuda $mode 2>&1 | tail -1)
    pm=$(mem_stop)
    mem_start
    rs=$(timeout 90 $D/bench_train run $D/arch$a.json $D/fmnist 96 10 60 8 cuda $mode 2>&1 | tail -1)
    rm_=$(mem_stop)
    echo "arch$a $mode | $py | gpu_mem_mib $pm || $rs | gpu_mem_mib $rm_"
  done
done
