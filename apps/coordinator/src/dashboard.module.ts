import { Module } from '@nestjs/common';
import { DashboardController } from './controllers/dashboard.controller.js';

/** Serves the admin dashboard at /dashboard (and / redirects there). */
@Module({ controllers: [DashboardController] })
export class DashboardModule {}
