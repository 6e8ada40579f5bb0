"""Anti-fraud: SIM-box hunting, card-breaking, real-name anomalies, fraud domains."""
