# Meltica's Kafka topics. The topic list is generated from src/meltica/topics.py:
#   meltica topics terraform > deploy/terraform/topics.tf.json
# (tests/unit/test_topics_as_code.py fails when the two disagree).

terraform {
  required_version = ">= 1.5"
  required_providers {
    kafka = {
      source  = "Mongey/kafka"
      version = "~> 0.8"
    }
  }
}

variable "bootstrap_servers" {
  description = "Kafka bootstrap servers."
  type        = list(string)
}

variable "partitions" {
  description = "Partitions per topic: the most instances any one processor service can spread over."
  type        = number
  default     = 4
}

variable "replication_factor" {
  description = "Replicas per partition (3 in production; min.insync.replicas should be 2)."
  type        = number
  default     = 3
}

variable "namespace" {
  description = "Prefix of every topic (MELTICA_NAMESPACE), empty for none."
  type        = string
  default     = ""
}

locals {
  prefix = var.namespace == "" ? "" : "${var.namespace}."
}

provider "kafka" {
  bootstrap_servers = var.bootstrap_servers
}
