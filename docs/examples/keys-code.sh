#!/usr/bin/env bash
# docs/examples/keys-code.sh: a chat secured by a short code instead of a
# key file: ann's side makes the code, bob's side is given it (each typing
# through a pipe). Prints the block after <!-- example: keys-code -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

a=127.0.0.1:20130
b=127.0.0.1:20131
background ann dgram chat --bind "$a" --code --name ann --no-history
wait_for ann '^code: '
code=$(grep -oE '[0-9]+-[a-z]+-[a-z]+-[a-z]+' "$DOCS_TMP/ann.out" | head -1)
background bob dgram chat --bind "$b" --peer "$a" --code "$code" --name bob --no-history
wait_for ann '^-- secure session'
wait_for bob '^-- secure session'
type_line bob "hi ann, the code worked"
wait_for ann '"hi ann, the code worked"'
wait_for bob 'worked"  ok'
close_input bob
finish bob
close_input ann
finish ann
echo "terminal 1:"
echo "\$ dgram chat --bind $a --code --name ann"
output ann
echo
echo "terminal 2:"
echo "\$ dgram chat --bind $b --peer $a --code $code --name bob"
output bob
