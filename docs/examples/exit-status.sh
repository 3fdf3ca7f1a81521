#!/usr/bin/env bash
# docs/examples/exit-status.sh: the EXIT STATUS section of dgram's manual
# page (dgram man), as plain text: the one source of the exit statuses,
# so that docs/exit-status.md cannot say otherwise. Prints the block after
# <!-- example: exit-status -->.
set -euo pipefail

dgram man | awk '
    /^\.SH "EXIT STATUS"/ { on = 1; next }
    /^\.SH / { on = 0 }
    on && /^\.TP/ { next }
    on && /^\\fB/ { sub(/^\\fB/, ""); sub(/\\fR$/, ""); status = $0; next }
    on { printf "%-14s %s\n", status, $0 }
' | sed -e 's/\\-/-/g' -e "s/\\\\\\*(Aq/'/g"
