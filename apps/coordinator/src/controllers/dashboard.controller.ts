import { Controller, Get, Header, Redirect } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';
import { Public } from '../auth/auth.decorators.js';

/** The admin dashboard: one static page over the REST API (it asks for an API key itself). */
const DASHBOARD_HTML = new URL('../../assets/dashboard.html', import.meta.url);

@ApiExcludeController()
@Public()
@Controller()
export class DashboardController {
  private readonly html = readFileSync(DASHBOARD_HTML, 'utf8');

  @Get()
  @Redirect('/dashboard', 302)
  root(): void {}

  @Get('dashboard')
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-cache')
  @Header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:")
  dashboard(): string {
    return this.html;
  }
}
