//! Open-loop load generation core: schedules, intended-time latency, per-interval HdrHistograms, interval logs
