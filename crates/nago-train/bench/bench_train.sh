#!/usr/bin/env bash
# make bench-train: nago-train against PyTorch eager (same torch, threads, batch size, data in
# memory, training step), for three generated architectures, interleaved so that machine load
# hits both alike. Last line: `train: <ratio>x PyTorch eager` (geometric mean).
set -euo pipefail
THREADS=${BENCH_TRAIN_THREADS:-2}
BATCH=${BENCH_TRAIN_BATCH:-96}
WARMUP=${BENCH_TRAIN_WARMUP:-3}
STEPS=${BENCH_TRAIN_STEPS:-12}
DATA=${BENCH_TRAIN_DATA:-data/fashion-mnist}
PY=${PYTHON:-python/.venv/bin/python}
DIR=$(mktemp -d /tmp/nago-bench-train.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
EX=target/release/examples/bench_train
echo "== architectures (Fashion-MNIST 1x28x28; batch $BATCH, $THREADS threads, $STEPS timed steps after $WARMUP) =="
$EX write "$DIR"
printf '%-6s %10s %14s %14s %7s\n' arch params pytorch_img/s nago_img/s ratio
logsum=0
for i in 0 1 2; do
  a="$DIR/arch$i.json"
  py=$($PY crates/nago-train/bench/bench_torch.py "$a" "$DATA" "$BATCH" "$WARMUP" "$STEPS" "$THREADS" | awk '/^pytorch:/{print $2}')
  rs=$($EX run "$a" "$DATA" "$BATCH" "$WARMUP" "$STEPS" "$THREADS" | awk '/^nago-train:/{print $2}')
  params=$(python3 -c "import json;print(json.load(open('$a'))['counts']['params'])")
  r=$(awk -v a="$rs" -v b="$py" 'BEGIN{printf "%.3f", a/b}')
  printf '%-6s %10s %14s %14s %7s\n' "arch$i" "$params" "$py" "$rs" "$r"
  logsum=$(awk -v s="$logsum" -v r="$r" 'BEGIN{printf "%.6f", s+log(r)}')
done
echo "train: $(awk -v s="$logsum" 'BEGIN{printf "%.2f", exp(s/3)}')x PyTorch eager"
