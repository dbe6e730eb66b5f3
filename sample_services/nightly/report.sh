#!/bin/sh
# The cron job's work: a nightly report (runs on plan-crn-* plans).
echo "nightly report for $(date -u +%Y-%m-%d)"
echo "orders: 0"
