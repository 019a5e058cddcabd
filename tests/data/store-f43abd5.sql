--
-- PostgreSQL database dump
--

\restrict 264szAGu5hZDnxemXm7PSRmpwed0Afh5NSVqekwG5n0O5dzR2OHab98BJfUtnXV

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: duplicate_decisions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.duplicate_decisions (
    reference_id uuid NOT NULL,
    decision character varying NOT NULL,
    duplicate_of uuid,
    score double precision,
    decided_by character varying NOT NULL,
    evidence json NOT NULL,
    decided_at timestamp with time zone NOT NULL
);


--
-- Name: import_batches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.import_batches (
    id uuid NOT NULL,
    record_key character varying NOT NULL,
    name character varying NOT NULL,
    storage_url character varying NOT NULL,
    checksum character varying,
    status character varying NOT NULL,
    failure_details character varying,
    physical_lines bigint,
    blank_lines bigint,
    run_id character varying,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: import_records; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.import_records (
    id uuid NOT NULL,
    record_key character varying NOT NULL,
    source_name character varying,
    processor_name character varying,
    processor_version character varying,
    expected_reference_count bigint,
    search_string character varying,
    searched_at timestamp with time zone,
    notes character varying,
    collision_strategy character varying,
    problem character varying,
    finalised boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: import_results; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.import_results (
    id uuid NOT NULL,
    import_batch_id uuid NOT NULL,
    line_number bigint NOT NULL,
    status character varying NOT NULL,
    reference_id uuid,
    errors json NOT NULL,
    failure_details character varying,
    unresolved_references json NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: reference; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reference (
    id uuid NOT NULL,
    visibility character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: reference_association; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reference_association (
    reference_id uuid NOT NULL,
    import_batch_id uuid NOT NULL,
    line_number bigint NOT NULL,
    association_type character varying NOT NULL,
    target_type character varying NOT NULL,
    target character varying NOT NULL,
    target_other_name character varying,
    target_reference_id uuid,
    created_at timestamp with time zone NOT NULL,
    linked_at timestamp with time zone,
    expired_at timestamp with time zone
);


--
-- Name: reference_bibliographic_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reference_bibliographic_keys (
    reference_id uuid NOT NULL,
    title character varying,
    year integer,
    authors character varying,
    first_author character varying,
    venue character varying,
    volume character varying,
    issue character varying,
    first_page character varying,
    last_page character varying
);


--
-- Name: reference_blocks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reference_blocks (
    reference_id uuid NOT NULL,
    block_hash bigint NOT NULL
);


--
-- Name: reference_enhancement; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reference_enhancement (
    id uuid NOT NULL,
    reference_id uuid NOT NULL,
    enhancement_type character varying NOT NULL,
    source character varying NOT NULL,
    visibility character varying NOT NULL,
    robot_version character varying,
    processor_version character varying,
    content json NOT NULL,
    content_hash character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: reference_identifier; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reference_identifier (
    reference_id uuid NOT NULL,
    identifier_type character varying NOT NULL,
    identifier character varying NOT NULL,
    other_identifier_name character varying,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: store_meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.store_meta (
    key character varying NOT NULL,
    value character varying
);


--
-- Data for Name: duplicate_decisions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.duplicate_decisions (reference_id, decision, duplicate_of, score, decided_by, evidence, decided_at) FROM stdin;
bdbc662c-2faa-41a2-a301-212954137f72	canonical	\N	\N	system	[]	2026-12-05 07:48:17.414735+00
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	duplicate	bdbc662c-2faa-41a2-a301-212954137f72	1	system	["title","year"]	2026-12-05 07:48:17.414735+00
101823be-fef5-425d-b06d-8aab958fdbdc	canonical	\N	\N	person	["person"]	2026-12-05 07:48:23.555889+00
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	duplicate	101823be-fef5-425d-b06d-8aab958fdbdc	\N	person	["person"]	2026-12-05 07:48:23.555889+00
\.


--
-- Data for Name: import_batches; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.import_batches (id, record_key, name, storage_url, checksum, status, failure_details, physical_lines, blank_lines, run_id, created_at, updated_at) FROM stdin;
3a9ba10b-79e9-45ca-9acd-5e4938a978ba	first	works.jsonl	file:///tmp/tmp.3zLeqCOuGW/home/landing/first/works.jsonl	2f4aa808a7ce8035bc9a948e097bd71b093fbf8b52565454b36b778e351ac67d	partially_failed	\N	3	0	0a4ee80d-b48b-46bc-b531-90d4f4c9626c	2026-12-05 07:48:03.918897+00	2026-12-05 07:48:04.763149+00
7f30ed38-f3a5-4f4c-9a8c-ee369f6d3cdf	second	works.jsonl	file:///tmp/tmp.3zLeqCOuGW/home/landing/second/works.jsonl	65b209167ce42a4b7484f31b49685b31d00b6cc2093b15a7fb08c36ddafa0471	completed	\N	2	0	808321ee-1b1f-49c5-824b-bbc4ee8b8771	2026-12-05 07:48:14.766115+00	2026-12-05 07:48:15.561403+00
\.


--
-- Data for Name: import_records; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.import_records (id, record_key, source_name, processor_name, processor_version, expected_reference_count, search_string, searched_at, notes, collision_strategy, problem, finalised, created_at, updated_at) FROM stdin;
e2e15060-0bc6-4674-a056-71a0cbbd43de	first	fixture	make-old-store	1	-1	\N	\N	\N	merge_defensive	\N	f	2026-12-05 07:48:03.486622+00	2026-12-05 07:48:03.486622+00
f1758ceb-4fda-4099-a24c-2a0a3cb27998	second	fixture	make-old-store	1	-1	\N	\N	\N	merge_defensive	\N	f	2026-12-05 07:48:14.512876+00	2026-12-05 07:48:14.512876+00
\.


--
-- Data for Name: import_results; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.import_results (id, import_batch_id, line_number, status, reference_id, errors, failure_details, unresolved_references, created_at) FROM stdin;
1cc11c55-c3c1-429f-b27f-9cdb2a935e05	3a9ba10b-79e9-45ca-9acd-5e4938a978ba	1	completed	bdbc662c-2faa-41a2-a301-212954137f72	[]	\N	[]	2026-12-05 07:48:04.763149+00
29ecdf5c-617e-4033-b70d-34e6b85b369f	3a9ba10b-79e9-45ca-9acd-5e4938a978ba	2	completed	ba98a838-5dc4-4dd4-9b0d-3dd696febe80	[]	\N	[]	2026-12-05 07:48:04.763149+00
ad746381-4608-4aff-8fef-bf5b1edfba61	3a9ba10b-79e9-45ca-9acd-5e4938a978ba	3	failed	\N	[{"code":"RequiredField","message":"identifiers is required","field":"identifiers"},{"code":"UnknownField","message":"unknown field 'not'","field":"not"}]	Line 3: RequiredField at identifiers: identifiers is required; UnknownField at not: unknown field 'not'	[]	2026-12-05 07:48:04.763149+00
9fa20c42-3ff5-445b-89db-d51f711ab9cf	7f30ed38-f3a5-4f4c-9a8c-ee369f6d3cdf	1	completed	dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	[]	\N	[]	2026-12-05 07:48:15.561403+00
48c865cc-a55b-4cc5-bc58-c98143501a5a	7f30ed38-f3a5-4f4c-9a8c-ee369f6d3cdf	2	completed	101823be-fef5-425d-b06d-8aab958fdbdc	[]	\N	[]	2026-12-05 07:48:15.561403+00
\.


--
-- Data for Name: reference; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.reference (id, visibility, created_at, updated_at) FROM stdin;
bdbc662c-2faa-41a2-a301-212954137f72	public	2026-12-05 07:48:04.763149+00	2026-12-05 07:48:04.763149+00
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	public	2026-12-05 07:48:04.763149+00	2026-12-05 07:48:04.763149+00
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	public	2026-12-05 07:48:15.561403+00	2026-12-05 07:48:15.561403+00
101823be-fef5-425d-b06d-8aab958fdbdc	public	2026-12-05 07:48:15.561403+00	2026-12-05 07:48:15.561403+00
\.


--
-- Data for Name: reference_association; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.reference_association (reference_id, import_batch_id, line_number, association_type, target_type, target, target_other_name, target_reference_id, created_at, linked_at, expired_at) FROM stdin;
\.


--
-- Data for Name: reference_bibliographic_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.reference_bibliographic_keys (reference_id, title, year, authors, first_author, venue, volume, issue, first_page, last_page) FROM stdin;
bdbc662c-2faa-41a2-a301-212954137f72	diabetes comorbidities and increased long term mortality in older patients	2012	zekry	zekry	diabetes metabolism	38	2	149	155
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	an unrelated trial of something else entirely	2001	zekry	zekry	diabetes metabolism	\N	\N	9	\N
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	diabetes comorbidities and increased long term mortality in older patients	2012	zekry	zekry	diabetes metabolism	38	2	149	155
101823be-fef5-425d-b06d-8aab958fdbdc	a cohort of another kind altogether in rural clinics	2005	zekry	zekry	diabetes metabolism	\N	\N	77	\N
\.


--
-- Data for Name: reference_blocks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.reference_blocks (reference_id, block_hash) FROM stdin;
bdbc662c-2faa-41a2-a301-212954137f72	8926094676090927735
bdbc662c-2faa-41a2-a301-212954137f72	4725647526452564678
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	1128719725984953616
bdbc662c-2faa-41a2-a301-212954137f72	4320756041706816435
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	2227778298962389029
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	3553349190676682096
bdbc662c-2faa-41a2-a301-212954137f72	4256621649315130886
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	805466867946883943
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	2969162710022030591
bdbc662c-2faa-41a2-a301-212954137f72	6492740502529629577
bdbc662c-2faa-41a2-a301-212954137f72	2014254275317815057
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	4239017443756707655
bdbc662c-2faa-41a2-a301-212954137f72	7573803731923866681
bdbc662c-2faa-41a2-a301-212954137f72	585293844205483091
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	2299077524832547364
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	4725647526452564678
101823be-fef5-425d-b06d-8aab958fdbdc	2287755464917318609
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	8926094676090927735
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	4320756041706816435
101823be-fef5-425d-b06d-8aab958fdbdc	3753607510111370353
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	4256621649315130886
101823be-fef5-425d-b06d-8aab958fdbdc	3329159317895226463
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	6492740502529629577
101823be-fef5-425d-b06d-8aab958fdbdc	5767642132983166402
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	2014254275317815057
101823be-fef5-425d-b06d-8aab958fdbdc	5362474811069661685
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	585293844205483091
101823be-fef5-425d-b06d-8aab958fdbdc	8058083708978096850
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	7573803731923866681
101823be-fef5-425d-b06d-8aab958fdbdc	1206058996807190652
\.


--
-- Data for Name: reference_enhancement; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.reference_enhancement (id, reference_id, enhancement_type, source, visibility, robot_version, processor_version, content, content_hash, created_at) FROM stdin;
2a73e751-e100-4b2e-9c9f-a2050a611ae6	bdbc662c-2faa-41a2-a301-212954137f72	bibliographic	export	public	\N	\N	{"enhancement_type":"bibliographic","authorship":[{"display_name":"Zekry, D.","position":"first"}],"publication_year":2012,"title":"Diabetes, comorbidities and increased long-term mortality in older patients","pagination":{"volume":"38","issue":"2","first_page":"149","last_page":"155"},"publication_venue":{"display_name":"Diabetes & Metabolism"}}	df2cc39990570a0cc4995ae2c88b1184146cfe32f36808137290c357f78d376c	2026-12-05 07:48:04.763149+00
6d8351e1-44d3-4eb2-98fb-a29f9e1b0d4a	ba98a838-5dc4-4dd4-9b0d-3dd696febe80	bibliographic	export	public	\N	\N	{"enhancement_type":"bibliographic","authorship":[{"display_name":"Zekry, D.","position":"first"}],"publication_year":2001,"title":"An unrelated trial of something else entirely","pagination":{"first_page":"9"},"publication_venue":{"display_name":"Diabetes & Metabolism"}}	c2e8dc265bfde7999c08b191d486a570d46b7535485adbc16927f63d95482e59	2026-12-05 07:48:04.763149+00
0a03b568-ac23-49fc-afdb-f9ba39232336	dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	bibliographic	export	public	\N	\N	{"enhancement_type":"bibliographic","authorship":[{"display_name":"Zekry, D.","position":"first"}],"publication_year":2012,"title":"DIABETES, COMORBIDITIES AND INCREASED LONG-TERM MORTALITY IN OLDER PATIENTS.","pagination":{"volume":"38","issue":"2","first_page":"149","last_page":"155"},"publication_venue":{"display_name":"Diabetes & Metabolism"}}	5c29d66e4d5fbc830b90c48beb9d9e48d21e140b378fecf89e21a9403932dc1c	2026-12-05 07:48:15.561403+00
905d5f80-c5a1-4a4f-83b7-0bece9d87cd5	101823be-fef5-425d-b06d-8aab958fdbdc	bibliographic	export	public	\N	\N	{"enhancement_type":"bibliographic","authorship":[{"display_name":"Zekry, D.","position":"first"}],"publication_year":2005,"title":"A cohort of another kind altogether in rural clinics","pagination":{"first_page":"77"},"publication_venue":{"display_name":"Diabetes & Metabolism"}}	6750e81449366e9d7602596a04393dd228db1c5094a0a472635bf933ff07df5d	2026-12-05 07:48:15.561403+00
\.


--
-- Data for Name: reference_identifier; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.reference_identifier (reference_id, identifier_type, identifier, other_identifier_name, created_at) FROM stdin;
bdbc662c-2faa-41a2-a301-212954137f72	other	a	export	2026-12-05 07:48:04.763149+00
bdbc662c-2faa-41a2-a301-212954137f72	doi	10.1000/first	\N	2026-12-05 07:48:04.763149+00
ba98a838-5dc4-4dd4-9b0d-3dd696febe80	other	d	export	2026-12-05 07:48:04.763149+00
dbea8ddb-2e7e-4040-afc4-71505ecfb5ab	other	b	export	2026-12-05 07:48:15.561403+00
101823be-fef5-425d-b06d-8aab958fdbdc	other	e	export	2026-12-05 07:48:15.561403+00
\.


--
-- Data for Name: store_meta; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.store_meta (key, value) FROM stdin;
schema_version	1
bibliographic_keys_version	95ee9ffb1944a75e
\.


--
-- Name: duplicate_decisions duplicate_decisions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.duplicate_decisions
    ADD CONSTRAINT duplicate_decisions_pkey PRIMARY KEY (reference_id);


--
-- Name: import_batches import_batches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_batches
    ADD CONSTRAINT import_batches_pkey PRIMARY KEY (id);


--
-- Name: import_batches import_batches_record_key_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_batches
    ADD CONSTRAINT import_batches_record_key_name_key UNIQUE (record_key, name);


--
-- Name: import_records import_records_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_records
    ADD CONSTRAINT import_records_pkey PRIMARY KEY (id);


--
-- Name: import_records import_records_record_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_records
    ADD CONSTRAINT import_records_record_key_key UNIQUE (record_key);


--
-- Name: reference reference_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reference
    ADD CONSTRAINT reference_pkey PRIMARY KEY (id);


--
-- Name: store_meta store_meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.store_meta
    ADD CONSTRAINT store_meta_pkey PRIMARY KEY (key);


--
-- Name: import_batches_record; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX import_batches_record ON public.import_batches USING btree (record_key);


--
-- Name: import_results_batch_line; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX import_results_batch_line ON public.import_results USING btree (import_batch_id, line_number);


--
-- Name: import_results_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX import_results_reference ON public.import_results USING btree (reference_id);


--
-- Name: reference_association_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reference_association_reference ON public.reference_association USING btree (reference_id);


--
-- Name: reference_association_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reference_association_target ON public.reference_association USING btree (target_type, target);


--
-- Name: reference_blocks_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reference_blocks_reference ON public.reference_blocks USING btree (reference_id);


--
-- Name: reference_enhancement_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reference_enhancement_reference ON public.reference_enhancement USING btree (reference_id);


--
-- Name: reference_identifier_reference; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reference_identifier_reference ON public.reference_identifier USING btree (reference_id);


--
-- Name: reference_identifier_value; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX reference_identifier_value ON public.reference_identifier USING btree (identifier_type, identifier);


--
-- PostgreSQL database dump complete
--

\unrestrict 264szAGu5hZDnxemXm7PSRmpwed0Afh5NSVqekwG5n0O5dzR2OHab98BJfUtnXV

