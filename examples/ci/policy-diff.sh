#!/usr/bin/env bash
# Print what a policy change grants and revokes, as Markdown, for a pull request.
#
#   examples/ci/policy-diff.sh OLD_POLICY NEW_POLICY INVENTORY_JSON
#
# The summary goes to standard output and, on GitHub Actions, to the job summary
# ($GITHUB_STEP_SUMMARY). Exit 0 when no role gains or loses access, 1 when some
# does (set ALLOW_CHANGES=1 to report changes without failing), 2 when a file is
# invalid. MCP_GUARD overrides the command (default: mcp-guard).
set -uo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 OLD_POLICY NEW_POLICY INVENTORY_JSON" >&2
    exit 2
fi

summary=$(${MCP_GUARD:-mcp-guard} policy diff --old "$1" --new "$2" --inventory "$3" --markdown)
status=$?
if [ "$status" -ge 2 ]; then
    exit "$status"
fi
printf '%s\n' "$summary"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '%s\n' "$summary" >> "$GITHUB_STEP_SUMMARY"
fi
if [ "$status" -eq 1 ] && [ "${ALLOW_CHANGES:-0}" = "1" ]; then
    exit 0
fi
exit "$status"
