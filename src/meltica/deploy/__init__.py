"""Deployment artefacts generated from the code's own tables (Terraform topics)."""
