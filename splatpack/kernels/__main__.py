"""``python -m splatpack.kernels``: build splatpack's kernels into torch's extension cache now (or load them from
it) and say which; exit 1 when they do not build. scripts/bootstrap.sh runs it so no command pays the build."""

from __future__ import annotations

import sys
import time

from splatpack import kernels


def main() -> int:
    cuda = kernels.cuda_buildable()
    start = time.perf_counter()
    try:
        kernels.build(cuda=cuda, verbose="-v" in sys.argv[1:])
    except Exception as error:
        print(f"splatpack kernels did not build: {str(error).strip()[:2000]}", file=sys.stderr)
        return 1
    targets = "CPU + CUDA" if cuda else "CPU"
    print(f"splatpack kernels ready ({targets}) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
