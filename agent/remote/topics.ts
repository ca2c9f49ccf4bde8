/** Every fleet topic, in one place (docs/remote.md, "Topics"). `p` is `fleet.topic_prefix`. */
export function fleetTopics(p: string, device: string) {
  return {
    status: `${p}/${device}/status`,
    command: `${p}/${device}/cmd`,
    commandResponse: `${p}/${device}/cmd/res`,
    config: `${p}/${device}/config`,
    report: `${p}/${device}/config/report`,
    group: (group: string) => `${p}/group/${group}/config`,
    root: `${p}/trust/root`,
    // Self-update (docs/update.md): manifest and timestamp (retained), chunk requests, chunks, the report.
    update: `${p}/${device}/update`,
    updateTimestamp: `${p}/${device}/update/timestamp`,
    updateRequest: `${p}/${device}/update/req`,
    updateChunk: `${p}/${device}/update/chunk`,
    updateReport: `${p}/${device}/update/report`,
    groupUpdate: (group: string) => `${p}/group/${group}/update`,
    groupUpdateTimestamp: (group: string) => `${p}/group/${group}/update/timestamp`,
    revocations: `${p}/trust/revocations`,
  };
}

export type FleetTopics = ReturnType<typeof fleetTopics>;

/** Operator side: the wildcard that sees every device's status / report. */
export const allStatuses = (p: string) => `${p}/+/status`;
export const allReports = (p: string) => `${p}/+/config/report`;
export const allUpdateReports = (p: string) => `${p}/+/update/report`;
export const allUpdateRequests = (p: string) => `${p}/+/update/req`;
