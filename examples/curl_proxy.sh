#!/usr/bin/env bash
# curl talking to `python -m compat serve`: DashScope's Assistant API over HTTP, unchanged.
#
# Start the proxy (its upstream is DashScope's Responses API, or compat's emulator):
#
#     python -m compat serve --port 8000
#     # or, with no key and no network:
#     python -m compat.testing -- python -m compat serve --port 8000
#
# then run this script. Every call carries the caller's key: the proxy uses it upstream for the
# caller's runs, and the objects it creates are visible to that key only.
#
#     BASE=http://127.0.0.1:8000/api/v1 DASHSCOPE_API_KEY=sk-... bash examples/curl_proxy.sh
set -euo pipefail

BASE="${BASE:-http://127.0.0.1:8000/api/v1}"
KEY="${DASHSCOPE_API_KEY:?set DASHSCOPE_API_KEY}"

call() {  # call METHOD PATH [JSON BODY]
    curl --silent --show-error --fail-with-body -X "$1" "$BASE/$2" \
        -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
        ${3:+--data "$3"}
}

first_id() {  # the first "id" of a JSON reply (no jq needed)
    grep -o '"id":"[^"]*"' | head -n 1 | cut -d '"' -f 4
}

assistant=$(call POST assistants '{"model":"qwen-plus","name":"curl helper","instructions":"Answer briefly."}' | first_id)
echo "assistant: $assistant"

thread=$(call POST threads '{"messages":[{"role":"user","content":"Say hello to curl."}]}' | first_id)
echo "thread: $thread"

echo "--- streamed run (Server-Sent Events, as the dashscope SDK reads them)"
curl --silent --show-error --no-buffer -X POST "$BASE/threads/$thread/runs" \
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
    --data "{\"assistant_id\":\"$assistant\",\"stream\":true}" | grep '^event:'

echo "--- the thread's messages, oldest first"
call GET "threads/$thread/messages?order=asc" | grep -o '"value":"\([^"\\]\|\\.\)*"'
