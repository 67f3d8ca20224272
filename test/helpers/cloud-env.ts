/**
 * The environment a spawned wid needs to reach each cloud emulator: endpoint overrides and test
 * credentials, as a user's shell would set them (shared by the tests and scripts/bench.ts).
 */
import { join } from 'node:path';
import type { AwsEmulator } from '../emulators/aws/server.js';
import type { AzureEmulator } from '../emulators/azure/server.js';
import type { GcpEmulator } from '../emulators/gcp/server.js';

export function awsEnv(aws: AwsEmulator, region = 'us-west-2'): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_IAM: aws.iamUrl,
    AWS_ENDPOINT_URL_EKS: aws.eksUrl,
    AWS_ENDPOINT_URL_STS: aws.stsUrl,
    AWS_ACCESS_KEY_ID: 'AKIDWIDTEST',
    AWS_SECRET_ACCESS_KEY: 'wid-test-secret',
    AWS_REGION: region,
  };
}

export function azureEnv(azure: AzureEmulator, subscription: string): Record<string, string> {
  return {
    AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential',
    AZURE_TENANT_ID: azure.tenantId,
    AZURE_CLIENT_ID: azure.clientId,
    AZURE_CLIENT_SECRET: azure.clientSecret,
    AZURE_AUTHORITY_HOST: azure.url,
    AZURE_RESOURCE_MANAGER_ENDPOINT: azure.url,
    AZURE_SUBSCRIPTION_ID: subscription,
    // The emulator serves HTTPS with a throw-away CA.
    NODE_EXTRA_CA_CERTS: azure.caPath,
  };
}

/** Writes application default credentials for the emulator into `dir`. */
export function gcpEnv(gcp: GcpEmulator, dir: string, project: string, projectNumber: string): Record<string, string> {
  const creds = join(dir, 'adc.json');
  gcp.writeCredentialsFile(creds, { projectNumber });
  return {
    GOOGLE_APPLICATION_CREDENTIALS: creds,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM: gcp.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER: gcp.url,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER: gcp.url,
    CLOUDSDK_CORE_PROJECT: project,
  };
}
