ALTER TABLE "roster_members" ADD COLUMN "pieces" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "roster_members" ADD COLUMN "data_epoch" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "shard_progress" ADD COLUMN "processed_samples" integer DEFAULT 0 NOT NULL;