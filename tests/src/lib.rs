//! Integration-test harness: see tests/tests/.
