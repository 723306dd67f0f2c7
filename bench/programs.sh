#!/bin/sh
# The locks programs take (docs/programs.md): one compare in turns mode into results/programs,
# one in free mode into results/programs-free, then bench/programs_figures.py writes
# results/programs/figures.json, the figures docs/programs.md quotes (the split placement's
# medians in readable units, and async-lock's costs against std-lock on every placement).
#
# usage: bench/programs.sh            (from the checkout's root; replaces both folders)
#   LOCKFAIR_CLIENT overrides the binary (default target/release/lockfair-client).
# Then: LOCKFAIR_BLESS=1 cargo test -p lockfair-client --test cli figures
set -eu

client=${LOCKFAIR_CLIENT:-target/release/lockfair-client}
here=$(dirname "$0")
if [ ! -x "$client" ]; then
    echo "programs.sh: no $client; build it first: cargo build --release --locked" >&2
    exit 2
fi
variants=flock,std-lock,poll-lock,fs4,async-lock
rm -rf results/programs results/programs-free
"$client" compare --variants "$variants" --rounds 2000 --max-seconds 2 --out results/programs
"$client" compare --variants "$variants" --mode free --rounds 2000 --max-seconds 2 \
    --out results/programs-free
python3 "$here/programs_figures.py" results/programs results/programs-free \
    >results/programs/figures.json
