#!/usr/bin/env bash
# The container's command: `verbatim index watch` keeps the index fresh (building it first if
# needed) while `verbatim discord` answers; the bot picks each rebuilt index up by itself.
# When either stops, the other is stopped too and the container exits with its status,
# so the restart policy brings both back.
set -uo pipefail

verbatim index watch &
watcher=$!
verbatim discord &
bot=$!
trap 'kill -TERM "$watcher" "$bot" 2>/dev/null' TERM INT
wait -n "$watcher" "$bot"
status=$?
kill -TERM "$watcher" "$bot" 2>/dev/null
wait
exit "$status"
