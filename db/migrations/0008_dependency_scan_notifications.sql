CREATE TABLE `app_dependencies` (
	`app_id` text PRIMARY KEY NOT NULL,
	`app_name` text NOT NULL,
	`commit_sha` text NOT NULL,
	`packages` text NOT NULL,
	`manifests` text NOT NULL,
	`truncated` integer DEFAULT false NOT NULL,
	`reported_at` text NOT NULL,
	`scan_state` text DEFAULT 'pending' NOT NULL,
	`scan_attempts` integer DEFAULT 0 NOT NULL,
	`next_scan_at` text,
	`scanned_at` text,
	`scan_error` text,
	CONSTRAINT "app_dependencies_scan_state_enum" CHECK("app_dependencies"."scan_state" IN ('pending', 'done', 'failed'))
);
--> statement-breakpoint
CREATE INDEX `app_dependencies_due` ON `app_dependencies` (`scan_state`,`next_scan_at`);--> statement-breakpoint
CREATE TABLE `notification_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`target_id` text NOT NULL,
	`event` text NOT NULL,
	`dedup_key` text NOT NULL,
	`payload` text NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` text NOT NULL,
	`last_error` text,
	`created_at` text NOT NULL,
	`delivered_at` text,
	CONSTRAINT "notification_deliveries_state_enum" CHECK("notification_deliveries"."state" IN ('pending', 'delivered', 'failed', 'skipped'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `notification_deliveries_dedup` ON `notification_deliveries` (`target_id`,`dedup_key`);--> statement-breakpoint
CREATE INDEX `notification_deliveries_due` ON `notification_deliveries` (`state`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `notification_targets` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`url_display` text NOT NULL,
	`url_sealed` text NOT NULL,
	`secret_sealed` text,
	`events` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	`last_attempt_at` text,
	`last_outcome` text,
	`last_http_status` integer,
	`last_error` text,
	CONSTRAINT "notification_targets_kind_enum" CHECK("notification_targets"."kind" IN ('json', 'slack')),
	CONSTRAINT "notification_targets_last_outcome_enum" CHECK("notification_targets"."last_outcome" IS NULL OR "notification_targets"."last_outcome" IN ('delivered', 'retrying', 'failed'))
);
--> statement-breakpoint
CREATE TABLE `osv_advisories` (
	`id` text PRIMARY KEY NOT NULL,
	`modified` text,
	`record` text NOT NULL,
	`fetched_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `osv_queries` (
	`ecosystem` text NOT NULL,
	`name` text NOT NULL,
	`version` text NOT NULL,
	`vulns` text NOT NULL,
	`checked_at` text NOT NULL,
	PRIMARY KEY(`ecosystem`, `name`, `version`)
);
--> statement-breakpoint
CREATE TABLE `app_vulnerabilities` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`app_id` text NOT NULL,
	`app_name` text NOT NULL,
	`commit_sha` text NOT NULL,
	`vuln_id` text NOT NULL,
	`aliases` text NOT NULL,
	`ecosystem` text NOT NULL,
	`package` text NOT NULL,
	`version` text NOT NULL,
	`severity` text NOT NULL,
	`score` real,
	`fixed_in` text,
	`summary` text,
	`url` text NOT NULL,
	`first_seen_at` text NOT NULL,
	CONSTRAINT "app_vulnerabilities_severity_enum" CHECK("app_vulnerabilities"."severity" IN ('unknown', 'low', 'medium', 'high', 'critical'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `app_vulnerabilities_finding` ON `app_vulnerabilities` (`app_id`,`vuln_id`,`ecosystem`,`package`,`version`);--> statement-breakpoint
CREATE INDEX `app_vulnerabilities_app_name` ON `app_vulnerabilities` (`app_name`);