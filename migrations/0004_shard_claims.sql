CREATE TABLE "shard_claims" (
	"dataset_id" uuid NOT NULL,
	"sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "shard_claims_dataset_id_sha256_pk" PRIMARY KEY("dataset_id","sha256")
);
--> statement-breakpoint
ALTER TABLE "shard_claims" ADD CONSTRAINT "shard_claims_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "shard_claims_sha256_idx" ON "shard_claims" USING btree ("sha256");