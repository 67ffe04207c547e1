CREATE TABLE "worker_nats_users" (
	"user_key" text PRIMARY KEY NOT NULL,
	"worker_id" uuid NOT NULL,
	"job_id" uuid NOT NULL,
	"issued_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "worker_nats_users_worker_idx" ON "worker_nats_users" USING btree ("worker_id");--> statement-breakpoint
CREATE INDEX "worker_nats_users_expires_idx" ON "worker_nats_users" USING btree ("expires_at");