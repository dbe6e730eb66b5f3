#!/bin/sh
echo "nightly report at $(date -u)"
