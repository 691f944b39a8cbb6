"""Fine-tuning the subject model (trl/peft imported only inside the functions that train)."""
