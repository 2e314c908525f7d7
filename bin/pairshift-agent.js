#!/usr/bin/env node
// The node agent from a checkout or an npm install (on nodes the installer
// runs dist/agent/node/main.js directly; see docs/agent.md).
import '../dist/agent/node/main.js';
