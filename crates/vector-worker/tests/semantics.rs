//! Semantic sanity through the whole path: paraphrases stored by the worker
//! score far above unrelated text, and the gateway's search query shape
//! ranks the right share first, using the HNSW index.

mod common;

use common::EmbedTasks as _;

use anyhow::Result;
use common::{Harness, TASK, cosine, vector_rows};
use ml_embedding::{Embedder, EmbedderConfig};
use serde_json::json;
use uuid::Uuid;

/// The gateway's query: cosine similarity via `<=>`, joined on share_id.
const GATEWAY_SEARCH: &str = "SELECT e.share_id, 1 - (e.embedding <=> $1::vector) AS similarity \
     FROM embeddings e JOIN ml_results r ON r.share_id = e.share_id AND r.task_type = 'embed_vectors' \
     ORDER BY e.embedding <=> $1::vector LIMIT 20";

/// The test runs in a schema of its own: the shared test tables hold many
/// identical vectors from other tests, which an approximate index may rank
/// anywhere; the ranking asserted here is that of a clean index.
#[tokio::test(flavor = "multi_thread")]
async fn paraphrases_score_high_and_search_ranks_the_right_share_first() -> Result<()> {
    let schema = format!("semantics_{}", Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&ml_testkit::env::database_url()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await?;
    let url = ml_testkit::env::database_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let isolated = format!("{url}{separator}options[search_path]={schema},public");
    let outcome = run_in(&isolated).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await?;
    outcome
}

async fn run_in(database_url: &str) -> Result<()> {
    let harness = Harness::start_with_database(common::VECTOR_WORKER, database_url, &[]).await?;
    let texts = [
        "A man is eating food.",
        "Someone is having a meal.",
        "The stock market fell sharply today.",
        "Kubernetes autoscaling of message queue consumers with KEDA",
    ];
    let shares: Vec<Uuid> = texts.iter().map(|_| Uuid::new_v4()).collect();
    for (share, text) in shares.iter().zip(texts) {
        harness
            .publish_embed(
                &Uuid::new_v4().to_string(),
                json!({"share_id": share, "content": {"text": text}}),
            )
            .await?;
    }
    for share in &shares {
        harness.wait_result(*share, TASK).await?;
    }
    let mut vectors = Vec::new();
    for share in &shares {
        let rows = vector_rows(&harness.db, *share).await?;
        assert_eq!(rows.len(), 1);
        vectors.push(rows[0].embedding.clone());
    }
    let paraphrase = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(paraphrase > 0.6, "paraphrases: {paraphrase}");
    assert!(unrelated < 0.2, "unrelated: {unrelated}");
    assert!(paraphrase - unrelated > 0.4, "{paraphrase} vs {unrelated}");

    // A search query embedded with the same model, as the gateway would.
    let embedder = Embedder::load(
        &ml_testkit::env::models_dir().join("all-MiniLM-L6-v2"),
        EmbedderConfig::default(),
    )?;
    let query = embedder
        .embed(&["how do I scale queue workers on kubernetes"])?
        .remove(0);
    let query = pgvector::Vector::from(query);
    // As autovacuum would on a live database: fresh planner statistics.
    sqlx::query("ANALYZE embeddings, ml_results")
        .execute(&harness.db)
        .await?;
    let mut tx = harness.db.begin().await?;
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await?;
    let ranked: Vec<(Uuid, f64)> = sqlx::query_as(GATEWAY_SEARCH)
        .bind(&query)
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(
        ranked.len(),
        shares.len(),
        "only this test's rows: {ranked:?}"
    );
    assert_eq!(ranked[0].0, shares[3], "ranking: {ranked:?}");
    let explain = sqlx::AssertSqlSafe(format!("EXPLAIN {GATEWAY_SEARCH}"));
    let plan: Vec<String> = sqlx::query_scalar(explain)
        .bind(&query)
        .fetch_all(&mut *tx)
        .await?;
    assert!(
        plan.iter()
            .any(|line| line.contains("embeddings_embedding_hnsw")),
        "the HNSW index serves the query: {plan:#?}"
    );
    tx.rollback().await?;
    harness.cleanup().await;
    Ok(())
}
