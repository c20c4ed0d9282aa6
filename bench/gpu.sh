#!/usr/bin/env bash
# The GPU run of issue 5/16, prepared for the `device` tool (an H200 machine; NOT RUN YET: no
# device was lent to the session that wrote it). One command, under 10 minutes:
#
#   IDPHOTO_DEVICE=cuda python -m bench.service --quick   (onnxruntime-gpu, the fetched fp16
#   ISNet with IO binding), photos/s end to end, mean and p95 latency, GPU memory.
#
# The device machine reaches nothing outside it and takes at most 64 MiB per call from here, so
# what it needs travels in pieces prepared here, in ignored folders named in `carry`:
#   .whl/     wheels for python3.12 (pip download, see /work/.library/device/README.md):
#             onnxruntime-gpu (CUDA 13 build; ~200+ MB: split over calls, or one call per
#             wheel into /tmp/site while the machine stays warm), and the service's pure-Python
#             dependencies the image lacks (celery, kombu, flask, flask-limiter, flower, boto3,
#             pika, redis, gunicorn, rembg==2.0.86 --no-deps, pymatting, pillow-heif).
#   .models/  the models directory (`idphoto models fetch` here; ISNet is 88 MB: split with
#             `split -b 60M`, carried in two calls, joined there by this script).
#   .svc/     Debian packages for rabbitmq-server, redis-server and radosgw (`apt-get download`)
#             unpacked with dpkg -x under /tmp/svc (the stack starts its own on free ports).
# Usage on the device machine (from the repo root):  bash bench/gpu.sh  -> $OUT/service.json
set -euo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
SITE=/tmp/site
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The image's CPU onnxruntime must not shadow the GPU build installed into $SITE.
python3 - <<'PY'
import onnxruntime as ort
providers = ort.get_available_providers()
print("onnxruntime", ort.__version__, ort.__file__, providers)
assert "CUDAExecutionProvider" in providers, "onnxruntime-gpu is not the onnxruntime imported"
PY
MODELS=/tmp/idphoto-models
mkdir -p "$MODELS"
if [ -d .models ]; then
  for f in .models/*; do
    case "$f" in
      *.part-aa) cat "${f%-aa}"-?? >"$MODELS/$(basename "${f%.part-aa}")" ;;
      *.part-??) ;;
      *) cp "$f" "$MODELS/" ;;
    esac
  done
fi
if [ -d .svc ]; then
  mkdir -p /tmp/svc && for d in .svc/*.deb; do dpkg -x "$d" /tmp/svc; done
  export PATH="/tmp/svc/usr/sbin:/tmp/svc/usr/bin:/tmp/svc/usr/lib/rabbitmq/bin:$PATH"
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu-before.csv"
# GPU memory every second while the benchmark runs (the peak is the figure to report).
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv -l 1 \
  >"$OUT/gpu-memory.csv" &
SMI=$!
trap 'kill $SMI 2>/dev/null || true' EXIT
export IDPHOTO_DEVICE=cuda IDPHOTO_MODELS_DIR="$MODELS" IDPHOTO_SEGMENT_PRECISION=auto
export PYTHONUNBUFFERED=1
timeout 540 python3 -m bench.service --quick --device cuda --out "$OUT/service.json" \
  2>&1 | tee "$OUT/service.log"
sort -t, -k2 -n "$OUT/gpu-memory.csv" | tail -1 | tee "$OUT/gpu-peak.csv"
