import { RedisLogStream } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { suiteEnv } from "../../../harness/services.ts";
import { logStreamConformance } from "../../ports/log_stream_conformance.ts";

logStreamConformance("RedisLogStream", () => RedisLogStream.connect(suiteEnv().redisUrl));
