#!/usr/bin/env node
import '../dist/journalnode/main.js';
