ALTER TABLE "jobs" DROP CONSTRAINT "jobs_dataset_id_datasets_id_fk";
--> statement-breakpoint
ALTER TABLE "jobs" ALTER COLUMN "dataset_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE set null ON UPDATE no action;