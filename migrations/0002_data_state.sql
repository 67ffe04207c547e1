ALTER TABLE "jobs" ADD COLUMN "data_state" text;--> statement-breakpoint
ALTER TABLE "roster_members" DROP COLUMN "pieces";--> statement-breakpoint
ALTER TABLE "roster_members" DROP COLUMN "data_epoch";