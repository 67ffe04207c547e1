import { Module } from '@nestjs/common';
import { GroupController } from './controllers/group.controller.js';
import { GroupService } from './services/group.service.js';
import { JoinTokenService } from './services/join-token.service.js';

@Module({
  controllers: [GroupController],
  providers: [GroupService, JoinTokenService],
  exports: [GroupService, JoinTokenService],
})
export class GroupsModule {}
