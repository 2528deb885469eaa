// Loaded before every test file: @peculiar/x509 2.x needs reflect-metadata first.
import 'reflect-metadata';
