#!/usr/bin/env bash
# Keeps the layers Package.swift describes: what a method does (LLMDApplication) never
# sees NIO, the event bus uses NIOCore's ByteBuffer but no channel or event loop, and
# only the C wrappers import C modules. Run by `make lint`.
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0
fail() { echo "check-layers: $*" >&2; failed=1; }

if grep -n '^import NIO' Sources/LLMDApplication/*.swift; then
    fail "LLMDApplication imports NIO: what a method does must not depend on a transport"
fi
if grep -n '^import NIO' Sources/LLMDBus/*.swift | grep -v ':import NIOCore$'; then
    fail "LLMDBus imports more of NIO than NIOCore"
fi
if grep -nE '\b(Channel|ChannelHandlerContext|EventLoop|EventLoopFuture|EventLoopPromise)\b' Sources/LLMDBus/*.swift; then
    fail "LLMDBus uses NIO's channels or event loops: those are LLMDTransport's"
fi
for module in CCurl CSQLite CSystemd CEditLine; do
    allowed=$(case $module in CCurl) echo LLMDCurl;; CSQLite) echo LLMDStore;; CSystemd) echo LLMDSystemd;; CEditLine) echo LLMDLineEditor;; esac)
    if grep -rln "^import $module\$" Sources --include=*.swift | grep -v "^Sources/$allowed/"; then
        fail "$module is imported outside $allowed"
    fi
done
exit $failed
