CREATE TABLE "job_exclusions" (
	"job_id" uuid NOT NULL,
	"worker_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"since" timestamp with time zone DEFAULT now() NOT NULL,
	"until" timestamp with time zone,
	CONSTRAINT "job_exclusions_job_id_worker_id_pk" PRIMARY KEY("job_id","worker_id")
);
--> statement-breakpoint
ALTER TABLE "job_exclusions" ADD CONSTRAINT "job_exclusions_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_exclusions" ADD CONSTRAINT "job_exclusions_worker_id_workers_id_fk" FOREIGN KEY ("worker_id") REFERENCES "public"."workers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_exclusions_until_idx" ON "job_exclusions" USING btree ("until");--> statement-breakpoint
-- Owner-audit bans were kept in memory and read back from their job.fault events: carry them over.
INSERT INTO "job_exclusions" ("job_id", "worker_id", "kind", "reason", "since", "until")
SELECT DISTINCT ON (e."job_id", e."worker_id") e."job_id", e."worker_id", 'owner-audit', coalesce(e."data"->>'message', ''), e."created_at", NULL
FROM "events" e
JOIN "jobs" j ON j."id" = e."job_id"
JOIN "workers" w ON w."id" = e."worker_id"
WHERE e."type" = 'job.fault' AND e."data"->>'kind' = 'owner-audit'
ORDER BY e."job_id", e."worker_id", e."id"
ON CONFLICT DO NOTHING;
