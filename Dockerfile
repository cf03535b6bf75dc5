# One image for every voxbus role (see compose.yaml).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN make install && .venv/bin/voxbus --profile default models fetch
ENV PATH=/app/.venv/bin:$PATH OMP_WAIT_POLICY=PASSIVE
CMD ["voxbus", "up"]
