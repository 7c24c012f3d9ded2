# MFI-AR container image. Build: docker build -t mfi-ar .   Run with PostgreSQL: docker compose up (compose.yaml).
# Migrations are a separate step (mfi-ar migrate), run once per release before the bot starts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/var/cache/mfi-ar/matplotlib \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=sqlite:////var/lib/mfi-ar/mfi-ar.db

# A dedicated user with no login shell; the only writable places are its state and cache directories.
RUN groupadd --system --gid 10001 mfi-ar \
    && useradd --system --uid 10001 --gid mfi-ar --home-dir /var/lib/mfi-ar --shell /usr/sbin/nologin mfi-ar \
    && install -d -o mfi-ar -g mfi-ar -m 0700 /var/lib/mfi-ar /var/cache/mfi-ar /var/cache/mfi-ar/matplotlib

WORKDIR /opt/mfi-ar

# Dependencies first (exact versions from requirements.lock), so a code change does not reinstall them.
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip install -c requirements.lock ".[postgres]" \
    && rm -rf /root/.cache build *.egg-info

USER mfi-ar
EXPOSE 3000
VOLUME ["/var/lib/mfi-ar"]

# The slim image has no curl: `mfi-ar health` asks GET /healthz on this container's own port.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["mfi-ar", "health"]

CMD ["mfi-ar", "serve"]
