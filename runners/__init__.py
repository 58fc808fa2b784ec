"""Runner tools: command-line options, the Kaggle download, the KFP client.

Above `pipeline/` (the composition), below the entry scripts."""
