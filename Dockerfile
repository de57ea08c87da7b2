# syntax=docker/dockerfile:1
# Verbatim's Discord bot, with `verbatim index watch` keeping the index fresh (docs/deploy.md).
#   docker build -t verbatim .
#   docker run -d --init --env-file .env -v "$PWD/corpus:/data/corpus" -v verbatim-index:/data/index \
#     -v verbatim-cache:/data/cache -v verbatim-feedback:/data/feedback verbatim
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    PATH=/opt/verbatim/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY config config
COPY index index
COPY bot bot
COPY deploy deploy
# The one install recipe (torch's CPU build, then the project), also run by `make test-deploy`.
RUN --mount=type=cache,target=/root/.cache/pip sh deploy/install.sh /opt/verbatim /src

# Everything the bot writes lives under /data, owned by an unprivileged user.
RUN groupadd --system --gid 10001 verbatim \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data verbatim \
    && mkdir -p /data/corpus /data/index /data/cache /data/feedback \
    && chown -R verbatim:verbatim /data
USER 10001:10001
WORKDIR /data
ENV VERBATIM_CORPUS_DIR=/data/corpus \
    VERBATIM_INDEX_DIR=/data/index \
    VERBATIM_CACHE_DIR=/data/cache \
    VERBATIM_FEEDBACK_DB=/data/feedback/feedback.sqlite
VOLUME ["/data/corpus", "/data/index", "/data/cache", "/data/feedback"]

# Offline checks only (token, allowed servers, index present and fresh, model checksums, disk);
# the first build may take a while, hence the start period.
HEALTHCHECK --interval=5m --timeout=2m --start-period=15m --retries=3 CMD ["verbatim", "doctor"]
CMD ["/src/deploy/run.sh"]
