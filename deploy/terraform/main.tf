# Meltica's Kafka topics, and each service's ACLs and quotas. Both files are generated:
#   meltica topics terraform > deploy/terraform/topics.tf.json        (src/meltica/topics.py)
#   meltica topics terraform --acls > deploy/terraform/acls.tf.json   (src/meltica/deploy/access.py)
# (tests/unit/test_topics_as_code.py and tests/unit/test_kafka_acls.py fail when they disagree).

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

variable "principal_prefix" {
  description = "Prefix of every service's principal: User:<prefix><service> (e.g. \"meltica-\")."
  type        = string
  default     = ""
}

variable "client_id" {
  description = "MELTICA_CLIENT_ID of the services: their readers' groups and the venues' transactional ids start with it."
  type        = string
  default     = "meltica"
}

variable "quota_producer_byte_rate" {
  description = "Bytes per second each service's principal may produce (per broker)."
  type        = number
  default     = 10485760
}

variable "quota_consumer_byte_rate" {
  description = "Bytes per second each service's principal may fetch (per broker)."
  type        = number
  default     = 52428800
}

variable "quota_request_percentage" {
  description = "Percent of one request-handler and network thread each service's principal may use."
  type        = number
  default     = 200
}

variable "quota_overrides" {
  description = "Quota settings by service, over the defaults: { projector = { consumer_byte_rate = 104857600 } }."
  type        = map(map(number))
  default     = {}
}

locals {
  prefix = var.namespace == "" ? "" : "${var.namespace}."
}

provider "kafka" {
  bootstrap_servers = var.bootstrap_servers
}
