"""The AdvMIM trainer of the `segment` project (trainer/segment_train)."""
