CREATE TYPE "public"."api_key_role" AS ENUM('admin', 'group-admin', 'viewer');--> statement-breakpoint
CREATE TYPE "public"."dataset_split" AS ENUM('train', 'validation', 'test');--> statement-breakpoint
CREATE TYPE "public"."dataset_status" AS ENUM('importing', 'ready', 'failed');--> statement-breakpoint
CREATE TYPE "public"."job_status" AS ENUM('queued', 'running', 'paused', 'completed', 'failed', 'cancelled');--> statement-breakpoint
CREATE TYPE "public"."shard_progress_status" AS ENUM('dealt', 'processed');--> statement-breakpoint
CREATE TYPE "public"."worker_status" AS ENUM('online', 'offline', 'draining', 'drained');--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"role" "api_key_role" NOT NULL,
	"group_id" uuid,
	"key_hash" text NOT NULL,
	"prefix" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "checkpoints" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"job_id" uuid NOT NULL,
	"round" bigint NOT NULL,
	"bucket" text NOT NULL,
	"object_key" text NOT NULL,
	"bytes" bigint NOT NULL,
	"sha256" text NOT NULL,
	"param_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "credits" (
	"job_id" uuid NOT NULL,
	"worker_id" uuid NOT NULL,
	"group_id" uuid NOT NULL,
	"samples" bigint DEFAULT 0 NOT NULL,
	"compute_ms" bigint DEFAULT 0 NOT NULL,
	"rounds" integer DEFAULT 0 NOT NULL,
	"rejected_chunks" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credits_job_id_worker_id_pk" PRIMARY KEY("job_id","worker_id")
);
--> statement-breakpoint
CREATE TABLE "datasets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"format" text NOT NULL,
	"status" "dataset_status" DEFAULT 'importing' NOT NULL,
	"feature_shape" jsonb NOT NULL,
	"feature_dtype" text DEFAULT 'float32' NOT NULL,
	"num_classes" integer NOT NULL,
	"class_names" jsonb NOT NULL,
	"normalisation" jsonb NOT NULL,
	"options" jsonb NOT NULL,
	"content_hash" text,
	"total_bytes" bigint DEFAULT 0 NOT NULL,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ready_at" timestamp with time zone,
	CONSTRAINT "datasets_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" uuid,
	"worker_id" uuid,
	"group_id" uuid,
	"type" text NOT NULL,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "groups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"allow_public_jobs" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "groups_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"group_id" uuid,
	"dataset_id" uuid NOT NULL,
	"status" "job_status" DEFAULT 'queued' NOT NULL,
	"status_reason" text DEFAULT '' NOT NULL,
	"spec" jsonb NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"epoch" integer DEFAULT 0 NOT NULL,
	"data_epoch" integer DEFAULT 0 NOT NULL,
	"round" bigint DEFAULT -1 NOT NULL,
	"samples_processed" bigint DEFAULT 0 NOT NULL,
	"created_by_key_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "join_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"group_id" uuid NOT NULL,
	"name" text DEFAULT '' NOT NULL,
	"token_hash" text NOT NULL,
	"prefix" text NOT NULL,
	"expires_at" timestamp with time zone,
	"max_uses" integer,
	"uses" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "metrics" (
	"job_id" uuid NOT NULL,
	"round" bigint NOT NULL,
	"name" text NOT NULL,
	"value" double precision NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "metrics_job_id_name_round_pk" PRIMARY KEY("job_id","name","round")
);
--> statement-breakpoint
CREATE TABLE "roster_members" (
	"job_id" uuid NOT NULL,
	"epoch" integer NOT NULL,
	"worker_id" uuid NOT NULL,
	"index" integer NOT NULL,
	"samples_per_round" integer NOT NULL,
	"speed" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "roster_members_job_id_epoch_worker_id_pk" PRIMARY KEY("job_id","epoch","worker_id")
);
--> statement-breakpoint
CREATE TABLE "rosters" (
	"job_id" uuid NOT NULL,
	"epoch" integer NOT NULL,
	"start_round" bigint NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rosters_job_id_epoch_pk" PRIMARY KEY("job_id","epoch")
);
--> statement-breakpoint
CREATE TABLE "rounds" (
	"job_id" uuid NOT NULL,
	"round" bigint NOT NULL,
	"epoch" integer NOT NULL,
	"data_epoch" integer NOT NULL,
	"loss" double precision,
	"samples" integer NOT NULL,
	"contributors" jsonb NOT NULL,
	"param_hash" text NOT NULL,
	"duration_ms" integer,
	"bytes_exchanged" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rounds_job_id_round_pk" PRIMARY KEY("job_id","round")
);
--> statement-breakpoint
CREATE TABLE "shard_progress" (
	"job_id" uuid NOT NULL,
	"data_epoch" integer NOT NULL,
	"shard_index" integer NOT NULL,
	"status" "shard_progress_status" NOT NULL,
	"worker_id" uuid,
	"round" bigint,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "shard_progress_job_id_data_epoch_shard_index_pk" PRIMARY KEY("job_id","data_epoch","shard_index")
);
--> statement-breakpoint
CREATE TABLE "shards" (
	"dataset_id" uuid NOT NULL,
	"split" "dataset_split" NOT NULL,
	"index" integer NOT NULL,
	"sample_count" integer NOT NULL,
	"bytes" integer NOT NULL,
	"sha256" text NOT NULL,
	CONSTRAINT "shards_dataset_id_split_index_pk" PRIMARY KEY("dataset_id","split","index")
);
--> statement-breakpoint
CREATE TABLE "workers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"group_id" uuid NOT NULL,
	"join_token_id" uuid,
	"name" text NOT NULL,
	"secret_hash" text NOT NULL,
	"status" "worker_status" DEFAULT 'offline' NOT NULL,
	"state" text DEFAULT 'idle' NOT NULL,
	"status_text" text DEFAULT '' NOT NULL,
	"capabilities" jsonb NOT NULL,
	"current_job_id" uuid,
	"reputation" double precision DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone,
	"lease_expires_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "checkpoints" ADD CONSTRAINT "checkpoints_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credits" ADD CONSTRAINT "credits_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credits" ADD CONSTRAINT "credits_worker_id_workers_id_fk" FOREIGN KEY ("worker_id") REFERENCES "public"."workers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_created_by_key_id_api_keys_id_fk" FOREIGN KEY ("created_by_key_id") REFERENCES "public"."api_keys"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "join_tokens" ADD CONSTRAINT "join_tokens_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "metrics" ADD CONSTRAINT "metrics_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "roster_members" ADD CONSTRAINT "roster_members_worker_id_workers_id_fk" FOREIGN KEY ("worker_id") REFERENCES "public"."workers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rosters" ADD CONSTRAINT "rosters_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rounds" ADD CONSTRAINT "rounds_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shard_progress" ADD CONSTRAINT "shard_progress_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shards" ADD CONSTRAINT "shards_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workers" ADD CONSTRAINT "workers_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workers" ADD CONSTRAINT "workers_join_token_id_join_tokens_id_fk" FOREIGN KEY ("join_token_id") REFERENCES "public"."join_tokens"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_idx" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "checkpoints_job_round_idx" ON "checkpoints" USING btree ("job_id","round");--> statement-breakpoint
CREATE INDEX "events_job_idx" ON "events" USING btree ("job_id","id");--> statement-breakpoint
CREATE INDEX "events_worker_idx" ON "events" USING btree ("worker_id","id");--> statement-breakpoint
CREATE INDEX "jobs_status_priority_idx" ON "jobs" USING btree ("status","priority");--> statement-breakpoint
CREATE UNIQUE INDEX "join_tokens_token_hash_idx" ON "join_tokens" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "join_tokens_group_idx" ON "join_tokens" USING btree ("group_id");--> statement-breakpoint
CREATE INDEX "shards_sha256_idx" ON "shards" USING btree ("sha256");--> statement-breakpoint
CREATE INDEX "workers_group_status_idx" ON "workers" USING btree ("group_id","status");