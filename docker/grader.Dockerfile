# The grading worker image: the course image plus bubblewrap, for Dask workers that grade with
# the bwrap sandbox inside their own container (docs/cluster.md). Hand-written, not generated.
# Build from the repository root (the checkout the coordinator runs), on its course image:
#   docker build -f docker/grader.Dockerfile -t introdl/grader:gpu .
#   docker build -f docker/grader.Dockerfile --build-arg COURSE=introdl/course:cpu -t introdl/grader:cpu .
# Without a registry, scripts/grader-image builds localhost/introdl/grader:cpu with podman.
#
# Run a worker as root in a privileged container (bwrap makes namespaces and mounts /proc, the
# working copy is a tmpfs mount, the sandbox's cgroups are written), with no volume of the course:
#   docker run --privileged introdl/grader:cpu dask worker tcp://SCHEDULER:8786 --nthreads 1
ARG COURSE=introdl/course:gpu
FROM ${COURSE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The bwrap sandbox starts as root and drops each kernel to a uid of its own (setpriv, prlimit
# and mount come with the course image's util-linux and mount).
# hadolint ignore=DL3002
USER 0:0

# Debian's bubblewrap (0.8.0 in bookworm), pinned by the base's release, not by version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && bwrap --version

# The checkout's introdl over the course image's copy, without touching its dependencies: Dask
# runs each task with the worker's own introdl, which must be the coordinator's (the batch stops
# when it is not). The same files when the course image was built from this checkout; after a
# change to the grading code, this layer (seconds) is all that needs rebuilding.
COPY pyproject.toml README.md /tmp/introdl-src/
COPY introdl /tmp/introdl-src/introdl
RUN pip install --no-cache-dir --no-deps --force-reinstall /tmp/introdl-src \
    && rm -rf /tmp/introdl-src

# The bundle cache (a few MB per lab) on the container's own disk: a new container fetches each
# bundle once from the scheduler. HOME is root's, where Dask keeps its own scratch space.
ENV INTRODL_BUNDLE_DIR=/var/cache/introdl-bundles \
    HOME=/root
WORKDIR /var/lib/introdl-worker

CMD ["dask", "worker", "--help"]
