#!/bin/sh
# The image's install steps. The Dockerfile runs them, and so does
# tests/deploy/test_image_install.py in a throwaway virtualenv, so that what the image
# does cannot rot where no Docker engine runs.
#
#   deploy/docker/install.sh deps VENV   # the dependencies, pinned by constraints.txt
#   deploy/docker/install.sh app VENV    # driftmon's wheel, built from this tree; pip check
#
# Run it from the directory holding pyproject.toml and constraints.txt. `deps` reads
# only those two files, so the image's dependency layer survives every code change.
set -eu

usage() {
    echo "usage: $0 deps|app VENV" >&2
    exit 2
}

[ "$#" -eq 2 ] || usage
step=$1
venv=$2
python=$venv/bin/python

case "$step" in
    deps)
        [ -x "$python" ] || python3 -m venv "$venv"
        requirements=$(mktemp)
        # the project's own requirements, without building it: that needs the source
        "$python" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
            pyproject.toml >"$requirements"
        "$python" -m pip install --constraint constraints.txt --requirement "$requirements"
        rm -f "$requirements"
        ;;
    app)
        wheels=$(mktemp -d)
        "$python" -m pip wheel --no-deps --wheel-dir "$wheels" .
        "$python" -m pip install --no-deps "$wheels"/driftmon-*.whl
        rm -rf "$wheels"
        # the wheel's requirements are what `deps` installed: nothing missing or clashing
        "$python" -m pip check
        ;;
    *)
        usage
        ;;
esac
